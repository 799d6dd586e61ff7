#!/usr/bin/env python3
"""Runs the real binaries with the exact command lines and environment the
manifests give them, against the fake Kubernetes API server, all on
127.0.0.1: the server must become ready and the agents' reports must make
the connectivity check pass. This catches a flag the chart or an example
passes that the binaries do not accept (kebab-case or the original Go style).

Only addresses are rewritten: the listen address to 127.0.0.1:PORT, the
agents' server endpoint to that address (with several replicas: two
servers, each on its own port, and the agents, which must then report to
every address, get both as their endpoint list; each server must then hold
the whole view, and with NETCHECKER_READY_WHEN_WARM it must not be ready
before the agents have reported), extra probe URLs to the server's
ping URL, and the agents' mesh ports (NETCHECKER_MESH_PORT, unless 0) to
free ports (no traffic leaves loopback, no fixed port is taken). Each agent
that serves the mesh must then answer a probe on its port, and the server's
/api/v2/status must show the mesh settings the manifest gave it.

What the kubelet would provide is provided too: environment from the
downward API (`fieldRef`: the pod's name, namespace, node), and the pod's
volumes as temporary directories, with the environment's paths into them
rewritten. A projected ServiceAccount token is minted by the fake API for
that very pod with the volume's audience (so a server enforcing report
authentication verifies it against the fake API's issuer, as it would
against a cluster's), and a Secret key holds a made-up token.

Usage: .tools/venv/bin/python hack/check-manifest-args.py
       (needs target/debug/netchecker-{server,agent,fake-apiserver}:
        cargo build -p netchecker-server -p netchecker-agent -p netchecker-fake-apiserver)
"""
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# Helm from .tools (hack/install-tools.sh), with its homes kept there too.
os.environ["PATH"] = f"{ROOT / '.tools/bin'}{os.pathsep}{os.environ.get('PATH', '')}"
for _k, _d in (("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"), ("HELM_DATA_HOME", "data")):
    os.environ.setdefault(_k, str(ROOT / ".tools/helm" / _d))
BIN = Path(os.environ.get("NETCHECKER_BIN_DIR", ROOT / "target" / "debug"))
CASES = [
    ("chart defaults", ["helm", "template", "netchecker", str(ROOT / "helm-chart"), "--namespace", "netchecker"]),
    ("chart ci/all-on-values.yaml", ["helm", "template", "netchecker", str(ROOT / "helm-chart"), "--namespace",
                                     "netchecker", "-f", str(ROOT / "helm-chart/ci/all-on-values.yaml")]),
    ("examples/plain", ["cat"] + sorted(str(p) for p in (ROOT / "examples/plain").glob("*.yaml"))),
    ("examples/go-style-flags", ["cat", str(ROOT / "examples/go-style-flags/netchecker.yaml")]),
    ("chart mesh.enabled=false", ["helm", "template", "netchecker", str(ROOT / "helm-chart"), "--namespace",
                                  "netchecker", "--set", "mesh.enabled=false"]),
    ("chart server.replicas=1 agent.reportToAllAddresses=false (the original's layout)",
     ["helm", "template", "netchecker", str(ROOT / "helm-chart"), "--namespace", "netchecker",
      "--set", "server.replicas=1", "--set", "agent.reportToAllAddresses=false"]),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 2.0, token: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""


def wait_for(pred, what: str, procs, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, p, log in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode} while waiting for {what}:\n{Path(log).read_text()}")
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def kube_env(container, pod: dict) -> dict[str, str]:
    """The container's environment as the kubelet sets it: literal values and
    the downward API fields the manifests use (Secret references are left out)."""
    fields = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": pod["metadata"]["namespace"],
              "spec.nodeName": pod["spec"]["nodeName"], "spec.serviceAccountName": pod["spec"]["serviceAccountName"],
              "status.podIP": "127.0.0.1"}
    out = {}
    for e in container.get("env", []):
        if "value" in e:
            out[e["name"]] = str(e["value"])
        elif "fieldRef" in e.get("valueFrom", {}):
            path = e["valueFrom"]["fieldRef"]["fieldPath"]
            assert path in fields, f"env {e['name']}: fieldRef {path} not provided by this check"
            out[e["name"]] = fields[path]
    return out


def post_json(url: str, body) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def mount_volumes(pod_spec, container, pod: dict, api: str, into: Path, env: dict[str, str]):
    """Materialises the container's volume mounts under `into` as the kubelet
    would fill them and rewrites environment values that point into them.
    Returns what was provided, for the log line."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    provided = []
    for m in container.get("volumeMounts", []):
        vol = volumes[m["name"]]
        d = into / m["name"]
        d.mkdir(parents=True)
        for src in vol.get("projected", {}).get("sources", []):
            sat = src.get("serviceAccountToken")
            if sat:
                minted = post_json(api + "/fake/tokens", {
                    "namespace": pod["metadata"]["namespace"], "pod": pod["metadata"]["name"],
                    "audiences": [sat.get("audience", "")]})
                assert minted["token"].count(".") == 2, f"the fake API minted no JWT: {minted}"
                (d / sat["path"]).write_text(minted["token"])
                provided.append(f"token(aud={sat.get('audience')})")
        if "secret" in vol:
            items = vol["secret"].get("items") or [{"key": "token", "path": "token"}]
            for it in items:
                (d / it["path"]).write_text(secrets.token_urlsafe(24))
            provided.append(f"secret({vol['secret']['secretName']})")
        mount = m["mountPath"].rstrip("/")
        for k, v in env.items():
            if v == mount or v.startswith(mount + "/"):
                env[k] = str(d) + v[len(mount):]
    return provided


def rewrite_server_args(args, port):
    out = []
    for a in args:
        a = re.sub(r"(^|=)(0\.0\.0\.0|\[::\]):\d+$", rf"\g<1>127.0.0.1:{port}", a)
        out.append(a)
    assert any(f"127.0.0.1:{port}" in a for a in out), f"no listen address found in {args}"
    return out


def rewrite_agent_args(args, endpoint):
    """endpoint: host:port, or several separated by "," (one per replica)."""
    first = endpoint.split(",")[0]
    out = []
    for a in args:
        a = re.sub(r"^(-{1,2}serverendpoint=).*", lambda m: m.group(1) + endpoint, a)
        a = re.sub(r"^(-{1,2}probeurls=).*", lambda m: f"{m.group(1)}http://{first}/api/v1/ping", a)
        out.append(a)
    if not any("serverendpoint=" in a for a in out):
        out.append(f"--serverendpoint={endpoint}")  # the binary's default is the Service name
    return out


def probe_mesh(port: int) -> str | None:
    """POST /mesh/probe with 100 bytes: the agent answers 200 with as many
    zero bytes. None when it does; else what went wrong."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/mesh/probe", data=b"\0" * 100, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            body = r.read()
            return None if r.status == 200 and body == b"\0" * 100 else f"answered {r.status}, {len(body)} bytes"
    except (urllib.error.URLError, OSError) as e:
        return str(e)


def server_supports(flag: str) -> bool:
    """Whether this server binary knows a flag (older ones ignore the
    variables of newer options, so there is nothing to check with them)."""
    out = subprocess.run([str(BIN / "netchecker-server"), "--help"], capture_output=True, text=True).stdout
    return flag in out


def run_case(name, cmd, work: Path):
    docs = [d for d in yaml.safe_load_all(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout) if d]
    dep = [d for d in docs if d["kind"] == "Deployment"][0]
    server_c = dep["spec"]["template"]["spec"]["containers"][0]
    namespace = dep["metadata"]["namespace"]
    daemonsets = [d for d in docs if d["kind"] == "DaemonSet"]
    assert len(daemonsets) == 2, f"{name}: expected two DaemonSets"

    pods = []
    agents = []
    for i, ds in enumerate(daemonsets):
        app = ds["spec"]["template"]["metadata"]["labels"]["app"]
        spec = ds["spec"]["template"]["spec"]
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{ds['metadata']['name']}-t{i}abc", "namespace": ds["metadata"]["namespace"],
                         "labels": {"app": app}, "uid": f"uid-{i}"},
            "spec": {"nodeName": "node-1", "serviceAccountName": spec.get("serviceAccountName", "default"),
                     "containers": [{"name": app, "image": "x"}]},
            "status": {"phase": "Running"},
        }
        pods.append(pod)
        agents.append((pod, spec, spec["containers"][0]))
    server_pod = {"metadata": {"name": "netchecker-server-t0abc", "namespace": namespace},
                  "spec": {"nodeName": "node-1", "serviceAccountName": dep["spec"]["template"]["spec"].get(
                      "serviceAccountName", "default")}}
    if "NETCHECKER_NAMESPACE" in kube_env(server_c, server_pod):
        # A server told to watch one namespace must not expect an agent pod
        # elsewhere (which never reports): "All 2 pods" below proves it.
        decoy = json.loads(json.dumps(pods[0]))
        decoy["metadata"].update(name=decoy["metadata"]["name"] + "-decoy", namespace=f"not-{namespace}",
                                 uid="uid-decoy")
        pods.append(decoy)
    (work / "pods.json").write_text(json.dumps(pods))

    procs = []

    def start(label, argv, env):
        log = work / f"{label}.log"
        p = subprocess.Popen(argv, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        procs.append((label, p, log))
        return p

    try:
        kubeconfig = work / "kubeconfig"
        start("fake-apiserver", [str(BIN / "netchecker-fake-apiserver"), "--listen", "127.0.0.1:0",
                                 "--kubeconfig-out", str(kubeconfig), "--pods", str(work / "pods.json")],
              dict(os.environ))
        wait_for(lambda: kubeconfig.exists() and kubeconfig.stat().st_size > 0, "the fake API's kubeconfig", procs)
        api = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"].rstrip("/")

        # Several replicas: each gets its own port, and the agents, which
        # must then report to every address (NETCHECKER_REPORT_TO_ALL_ADDRESSES),
        # get all of them as their endpoint list (a headless Service's name
        # would resolve to the replicas' pod addresses). Two stand for any
        # number. Each replica must then hold the whole view.
        replicas = int(dep["spec"].get("replicas", 1))
        report_to_all = {kube_env(c, pod).get("NETCHECKER_REPORT_TO_ALL_ADDRESSES", "false") for pod, _, c in agents}
        assert len(report_to_all) == 1, f"the DaemonSets disagree on NETCHECKER_REPORT_TO_ALL_ADDRESSES: {report_to_all}"
        report_to_all = report_to_all.pop() == "true"
        assert replicas == 1 or report_to_all, \
            f"{replicas} server replicas, but the agents report to one Service address: each replica sees part"
        servers = []
        provided = []
        for i in range(min(replicas, 2)):
            port = free_port()
            pod = dict(server_pod, metadata=dict(server_pod["metadata"], name=f"netchecker-server-t{i}abc"))
            env = {"PATH": os.environ.get("PATH", ""), "KUBECONFIG": str(kubeconfig), **kube_env(server_c, pod)}
            provided += mount_volumes(dep["spec"]["template"]["spec"], server_c, pod, api,
                                      work / f"server-volumes-{i}", env)
            args = rewrite_server_args(server_c.get("args", []), port)
            start(f"server-{i}", [str(BIN / "netchecker-server"), *args], env)
            servers.append((f"http://127.0.0.1:{port}", env, args))
        base, server_env, server_args = servers[0]
        endpoint = ",".join(b.removeprefix("http://") for b, _, _ in servers)
        warm = server_env.get("NETCHECKER_READY_WHEN_WARM") == "true" and server_supports("--ready-when-warm")
        for b, _, _ in servers:
            if warm:
                # Ready only once warm: up and watching, but not ready before
                # the agents have reported (the grace is far longer than this).
                wait_for(lambda: get(b + "/healthz")[0] == 200, "server /healthz", procs)
                code = get(b + "/readyz")[0]
                assert code == 503, f"{b}: /readyz answered {code} before any agent reported (NETCHECKER_READY_WHEN_WARM)"
            else:
                wait_for(lambda: get(b + "/readyz")[0] == 200, "server /readyz (pod view synced)", procs)
        if warm:
            provided.append("not ready before the agents reported (ready when warm)")

        mesh_ports = []
        for pod, spec, c in agents:
            pod_name = pod["metadata"]["name"]
            env = {"PATH": os.environ.get("PATH", ""), **kube_env(c, pod)}
            provided += mount_volumes(spec, c, pod, api, work / f"volumes-{pod_name}", env)
            if env.get("NETCHECKER_MESH_PORT", "0") != "0":
                declared = [p["containerPort"] for p in c.get("ports", []) if p.get("name") == "mesh"]
                assert declared == [int(env["NETCHECKER_MESH_PORT"])], \
                    f"{pod_name}: NETCHECKER_MESH_PORT {env['NETCHECKER_MESH_PORT']} is not its port 'mesh' {declared}"
                env["NETCHECKER_MESH_PORT"] = str(free_port())
                mesh_ports.append((pod_name, int(env["NETCHECKER_MESH_PORT"])))
            start(f"agent-{pod_name}", [str(BIN / "netchecker-agent"),
                                        *rewrite_agent_args(c.get("args", []), endpoint)], env)

        answer = None
        for b, _, _ in servers:
            def check_ok():
                code, body = get(b + "/api/v1/connectivity_check")
                return body if code == 200 else None

            body = wait_for(check_ok, f"{b}: connectivity_check 200 with both agents", procs, seconds=30)
            answer = json.loads(body)
            assert answer["Message"] == "All 2 pods successfully reported back to the server", (b, answer)
            wait_for(lambda: get(b + "/readyz")[0] == 200, f"{b}: /readyz once the agents reported", procs)
        if len(servers) > 1:
            provided.append(f"{len(servers)} replicas, each with the whole view")
        read_token_file = server_env.get("NETCHECKER_READ_TOKEN_FILE")
        token = None
        if read_token_file and server_supports("--read-token-file"):
            token = Path(read_token_file).read_text().strip()
            assert get(base + "/metrics")[0] == 401, "/metrics without the read token"
            assert get(base + "/metrics", token=token)[0] == 200, "/metrics with the read token"
            provided.append("read token required by /metrics")
        # The mesh: every agent given a port answers probes on it, and the
        # server runs with the settings of the manifest (or off).
        for pod_name, mesh_port in mesh_ports:
            wrong = probe_mesh(mesh_port)
            assert wrong is None, f"{pod_name}: no mesh probe answer on NETCHECKER_MESH_PORT {mesh_port}: {wrong}"
        peers = int(server_env.get("NETCHECKER_MESH_PEERS", "8"))
        code, body = get(base + "/api/v2/status", token=token)
        assert code == 200, f"/api/v2/status answered {code}"
        mesh = json.loads(body).get("mesh") or {"enabled": False}
        if peers:
            want = {"enabled": True, "peers": peers, "round_seconds": int(server_env.get("NETCHECKER_MESH_ROUND", "60"))}
            assert {k: mesh.get(k) for k in want} == want, f"/api/v2/status mesh {mesh}, the manifest says {want}"
            assert len(mesh_ports) == 2, f"the server hands out peers but {len(mesh_ports)} agent(s) serve the mesh"
            provided.append(f"mesh: {peers} peers per {want['round_seconds']} s round, "
                            f"{len(mesh_ports)} agents answer probes")
        else:
            assert not mesh["enabled"], f"NETCHECKER_MESH_PEERS=0 but /api/v2/status says {mesh}"
            assert not mesh_ports, "the mesh is off at the server but agents serve it"
            provided.append("mesh off")
        nc_env = " ".join(sorted(e["name"] for e in server_c.get("env", []) if e["name"].startswith("NETCHECKER_")))
        print(f"  ok   {name}: server {' '.join(server_args)} [{nc_env}]"
              f"{' volumes: ' + ', '.join(provided) if provided else ''} | agents report, check: {answer['Message']}")
    finally:
        for _, p, _ in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for label, p, log in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def main():
    for b in ("netchecker-server", "netchecker-agent", "netchecker-fake-apiserver"):
        if not (BIN / b).exists():
            sys.exit(f"check-manifest-args: {BIN / b} missing; cargo build -p {b}")
    failed = []
    print("check-manifest-args:")
    for name, cmd in CASES:
        with tempfile.TemporaryDirectory() as d:
            try:
                run_case(name, cmd, Path(d))
            except Exception as e:  # noqa: BLE001 - report each case
                failed.append(name)
                print(f"  FAIL {name}: {e}")
                for log in sorted(Path(d).glob("*.log")):
                    print(f"  --- {log.name}:\n{log.read_text()[-3000:]}")
    if failed:
        sys.exit(f"check-manifest-args: failed: {', '.join(failed)}")
    print("check-manifest-args: OK")


if __name__ == "__main__":
    main()
