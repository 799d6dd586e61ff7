#!/usr/bin/env python3
"""Behaviour checks of the Helm chart: renders it with several value sets
(helm template) and asserts what the server and agents rely on, so that a
template change that breaks a deployment fails here, not in a cluster.
Run by hack/test-deploy.sh: .tools/venv/bin/python hack/check-chart.py
"""
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# Helm from .tools (hack/install-tools.sh), with its homes kept there too.
os.environ["PATH"] = f"{ROOT / '.tools/bin'}{os.pathsep}{os.environ.get('PATH', '')}"
for _k, _d in (("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"), ("HELM_DATA_HOME", "data")):
    os.environ.setdefault(_k, str(ROOT / ".tools/helm" / _d))
CHART = ROOT / "helm-chart"
failures = []


def render(*sets, values=None, release="netchecker", namespace="netchecker"):
    """helm template; `values` is a dict of values (passed as a file, so
    strings such as "5" stay strings) or a path."""
    cmd = ["helm", "template", release, str(CHART), "--namespace", namespace]
    if isinstance(values, dict):
        tmp = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        yaml.safe_dump(values, tmp)
        tmp.close()
        values = tmp.name
    if values:
        cmd += ["-f", str(values)]
    for s in sets:
        cmd += ["--set", s]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def check(name):
    def deco(fn):
        try:
            fn()
            print(f"  ok   {name}")
        except Exception as e:  # noqa: BLE001 - report every failing check
            failures.append(name)
            print(f"  FAIL {name}: {e}")
        return fn
    return deco


def container(obj):
    cs = obj["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 1
    return cs[0]


def env(c):
    return {e["name"]: e for e in c.get("env", [])}


def daemonsets(docs):
    return [x for x in docs if x["kind"] == "DaemonSet"]


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


TOKEN_DIR = "/var/run/secrets/netchecker"


HARDENED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True}
# One server, agents reporting to the ClusterIP Service: the original's layout.
ORIGINAL_LAYOUT = ("server.replicas=1", "agent.reportToAllAddresses=false")
SERVER_POD_LABELS = {"app": "netchecker-server", "app.kubernetes.io/component": "server",
                     "app.kubernetes.io/instance": "netchecker", "app.kubernetes.io/name": "netchecker"}

print("check-chart:")


@check("defaults: the kubespray layout (names, port 8081, selectors, probes)")
def _():
    d = render()
    kinds = sorted(x["kind"] for x in d)
    assert kinds == ["ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "DaemonSet",
                     "DaemonSet", "Deployment", "PodDisruptionBudget", "Role", "Role", "RoleBinding", "RoleBinding",
                     "Service", "Service", "ServiceAccount", "ServiceAccount"], kinds
    svc = one(d, "Service", "netchecker-service")
    assert svc["spec"]["type"] == "ClusterIP"
    assert "clusterIP" not in svc["spec"] and "publishNotReadyAddresses" not in svc["spec"], "ready replicas only"
    assert svc["spec"]["ports"][0]["port"] == 8081 and "nodePort" not in svc["spec"]["ports"][0]
    dep = one(d, "Deployment", "netchecker-server")
    assert dep["spec"]["replicas"] == 2
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    for k, v in svc["spec"]["selector"].items():
        assert pod_labels.get(k) == v, f"Service selector {k}={v} does not match the server pod"
    c = container(dep)
    assert c["ports"] == [{"name": "http", "containerPort": 8081, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert "--endpoint=0.0.0.0:8081" in c["args"]
    assert not any(a.startswith("--namespace") for a in c["args"]), "the namespace goes in the environment"
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "netchecker-server"


PODS_READ = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
NODES_READ = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]
RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
# The mesh's (mesh.enabled, the default) read access to the nodes.
NODES_ROLE = "netchecker-server-nodes"


OTHER_GRANTS = ("-server-nodes", "-server-lease", "-server-node-status")


def pod_rbac(docs):
    """The RBAC objects of the pod watch, without the mesh's on nodes and
    the leader's (its Lease, the nodes' status and Events)."""
    return [x for x in docs if x["kind"] in RBAC_KINDS and not x["metadata"]["name"].endswith(OTHER_GRANTS)]


@check("RBAC (default): a Role in the release namespace, pods only, and the server watches only there")
def _():
    d = render(namespace="ops")
    assert {x["kind"] for x in pod_rbac(d)} == {"Role", "RoleBinding"}
    role = one(pod_rbac(d), "Role")
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"] == PODS_READ, role["rules"]
    b = one(pod_rbac(d), "RoleBinding")
    assert b["metadata"]["namespace"] == "ops"
    assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
    assert b["subjects"] == [{"kind": "ServiceAccount", "name": "netchecker-server", "namespace": "ops"}]
    c = container(one(d, "Deployment"))
    # The pod's own namespace, so plain manifests applied elsewhere follow.
    assert env(c)["NETCHECKER_NAMESPACE"] == {
        "name": "NETCHECKER_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
    assert not any(a.startswith("--namespace") for a in c["args"])


@check("RBAC: watchAllNamespaces takes a ClusterRole (pods only) and no namespace")
def _():
    d = render("server.watchAllNamespaces=true")
    assert {x["kind"] for x in pod_rbac(d)} == {"ClusterRole", "ClusterRoleBinding"}
    role = one(d, "ClusterRole", "netchecker-server")
    assert role["rules"] == PODS_READ and "namespace" not in role["metadata"]
    b = one(d, "ClusterRoleBinding", "netchecker-server")
    assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role["metadata"]["name"]}
    assert b["subjects"] == [{"kind": "ServiceAccount", "name": "netchecker-server", "namespace": "netchecker"}]
    assert "NETCHECKER_NAMESPACE" not in env(container(one(d, "Deployment")))
    assert not [x for x in render("rbac.create=false") if x["kind"] in RBAC_KINDS]


@check("watchNamespace: Role + RoleBinding in that namespace, NETCHECKER_NAMESPACE set to it")
def _():
    d = render("server.watchNamespace=team-a", namespace="ops")
    assert not [x for x in pod_rbac(d) if x["kind"].startswith("Cluster")]
    role = one(pod_rbac(d), "Role")
    assert role["metadata"]["namespace"] == "team-a"
    b = one(pod_rbac(d), "RoleBinding")
    assert b["metadata"]["namespace"] == "team-a"
    assert b["subjects"][0]["namespace"] == "ops"
    assert env(container(one(d, "Deployment")))["NETCHECKER_NAMESPACE"]["value"] == "team-a"
    r = subprocess.run(["helm", "template", "x", str(CHART), "--set", "server.watchNamespace=a",
                        "--set", "server.watchAllNamespaces=true"], capture_output=True, text=True)
    assert r.returncode != 0 and "exclude each other" in r.stderr, r.stderr


@check("agents: two DaemonSets with the exact app labels the server selects on")
def _():
    d = render(release="prod")
    pod = one(d, "DaemonSet", "prod-netchecker-agent")
    host = one(d, "DaemonSet", "prod-netchecker-agent-hostnet")
    assert pod["spec"]["template"]["metadata"]["labels"]["app"] == "netchecker-agent"
    assert host["spec"]["template"]["metadata"]["labels"]["app"] == "netchecker-agent-hostnet"
    # The server labels metrics host_network when the pod name contains "hostnet".
    assert "hostnet" in host["metadata"]["name"] and "hostnet" not in pod["metadata"]["name"]
    for ds in (pod, host):
        sel = ds["spec"]["selector"]["matchLabels"]
        labels = ds["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in sel.items())
    ps, hs = pod["spec"]["template"]["spec"], host["spec"]["template"]["spec"]
    assert "hostNetwork" not in ps and "dnsPolicy" not in ps
    assert hs["hostNetwork"] is True and hs["dnsPolicy"] == "ClusterFirstWithHostNet"
    for s in (ps, hs):
        assert s["tolerations"] == [{"operator": "Exists"}]
        assert s["automountServiceAccountToken"] is False
        assert s["serviceAccountName"] == "prod-netchecker-agent"


@check("report auth (default enforce): agents mount a pod-bound token for the server's audience")
def _():
    d = render()
    c = container(one(d, "Deployment"))
    assert env(c)["NETCHECKER_REPORT_AUTH"]["value"] == "enforce"
    assert env(c)["NETCHECKER_REPORT_AUTH_AUDIENCE"]["value"] == "netchecker"
    assert not any("report-auth" in a for a in c["args"]), "passed as environment, not as flags"
    assert len(daemonsets(d)) == 2
    for ds in daemonsets(d):
        spec = pod_spec(ds)
        assert spec["serviceAccountName"] == "netchecker-agent"
        assert spec["automountServiceAccountToken"] is False
        vols = {v["name"]: v for v in spec["volumes"]}
        assert list(vols) == ["report-token"], vols
        assert vols["report-token"]["projected"]["sources"] == [
            {"serviceAccountToken": {"audience": "netchecker", "expirationSeconds": 3600, "path": "token"}}]
        ac = container(ds)
        assert ac["volumeMounts"] == [{"name": "report-token", "mountPath": TOKEN_DIR, "readOnly": True}]
        assert env(ac)["NETCHECKER_TOKEN_FILE"]["value"] == TOKEN_DIR + "/token"
        assert not any("token" in a for a in ac["args"])


@check("report auth: the agents' ServiceAccount has no API token and no RBAC")
def _():
    for d in (render(), render("server.watchAllNamespaces=true")):
        sa = one(d, "ServiceAccount", "netchecker-agent")
        assert sa["automountServiceAccountToken"] is False
        for b in [x for x in d if x["kind"].endswith("RoleBinding")]:
            assert all(s["name"] != "netchecker-agent" for s in b["subjects"]), b["subjects"]
    d = render("agent.serviceAccount.name=nc-agents", release="prod", namespace="ops")
    assert one(d, "ServiceAccount", "nc-agents")["metadata"]["namespace"] == "ops"
    assert {pod_spec(ds)["serviceAccountName"] for ds in daemonsets(d)} == {"nc-agents"}
    assert one(render(release="prod"), "ServiceAccount", "prod-netchecker-agent")
    d = render("agent.serviceAccount.create=false", "agent.serviceAccount.name=existing")
    assert [x["metadata"]["name"] for x in d if x["kind"] == "ServiceAccount"] == ["netchecker-server"]
    assert {pod_spec(ds)["serviceAccountName"] for ds in daemonsets(d)} == {"existing"}


@check("report auth: off mounts no token; warn mounts it; audience and lifetime from values")
def _():
    # `mode: off` in a YAML file arrives as false (YAML 1.1); both mean off.
    for d in (render("reportAuth.mode=off"), render(values={"reportAuth": {"mode": False}})):
        assert env(container(one(d, "Deployment")))["NETCHECKER_REPORT_AUTH"]["value"] == "off"
        for ds in daemonsets(d):
            assert "volumes" not in pod_spec(ds) and "volumeMounts" not in container(ds)
            assert "NETCHECKER_TOKEN_FILE" not in env(container(ds))
    d = render("reportAuth.mode=warn", "reportAuth.audience=nc.example", "reportAuth.expirationSeconds=600")
    c = container(one(d, "Deployment"))
    assert env(c)["NETCHECKER_REPORT_AUTH"]["value"] == "warn"
    assert env(c)["NETCHECKER_REPORT_AUTH_AUDIENCE"]["value"] == "nc.example"
    for ds in daemonsets(d):
        sat = pod_spec(ds)["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
        assert sat == {"audience": "nc.example", "expirationSeconds": 600, "path": "token"}
        assert env(container(ds))["NETCHECKER_TOKEN_FILE"]["value"] == TOKEN_DIR + "/token"
    for bad in ("reportAuth.mode=strict", "reportAuth.expirationSeconds=599"):
        r = subprocess.run(["helm", "template", "x", str(CHART), "--set", bad], capture_output=True, text=True)
        assert r.returncode != 0 and "reportAuth" in r.stderr, (bad, r.stderr)


@check("report auth survives replaced arguments (the Go-style example)")
def _():
    d = render(values=ROOT / "examples/values-go-style-flags.yaml")
    assert env(container(one(d, "Deployment")))["NETCHECKER_REPORT_AUTH"]["value"] == "enforce"
    for ds in daemonsets(d):
        assert env(container(ds))["NETCHECKER_TOKEN_FILE"]["value"] == TOKEN_DIR + "/token"


@check("read token: off by default; a Secret mounted, its file passed, the ServiceMonitor sends it")
def _():
    d = render("metrics.serviceMonitor.enabled=true")
    c = container(one(d, "Deployment"))
    assert "NETCHECKER_READ_TOKEN_FILE" not in env(c) and "volumeMounts" not in c
    assert "volumes" not in pod_spec(one(d, "Deployment"))
    assert "bearerTokenSecret" not in one(d, "ServiceMonitor")["spec"]["endpoints"][0]
    d = render("metrics.serviceMonitor.enabled=true", "server.readToken.existingSecret=nc-read",
               "server.readToken.key=bearer")
    dep = one(d, "Deployment")
    c = container(dep)
    assert pod_spec(dep)["volumes"] == [{"name": "read-token", "secret": {
        "secretName": "nc-read", "items": [{"key": "bearer", "path": "token"}]}}], pod_spec(dep)["volumes"]
    assert c["volumeMounts"] == [{"name": "read-token", "mountPath": "/var/run/secrets/netchecker-read", "readOnly": True}]
    assert env(c)["NETCHECKER_READ_TOKEN_FILE"]["value"] == "/var/run/secrets/netchecker-read/token"
    assert not any("token" in a for a in c["args"]), "passed as environment, not as a flag"
    ep = one(d, "ServiceMonitor")["spec"]["endpoints"][0]
    assert ep["bearerTokenSecret"] == {"name": "nc-read", "key": "bearer"}
    assert ep["path"] == "/metrics"
    # The agents need no read token.
    for ds in daemonsets(d):
        assert "NETCHECKER_READ_TOKEN_FILE" not in env(container(ds))


def server_memory(d):
    r = container(one(d, "Deployment"))["resources"]
    return r["requests"].get("memory"), r["limits"].get("memory")


def expected_memory(max_agents, m):
    """The formula of doc/deployment.md, computed independently of the chart."""
    request = math.ceil(m["requestBaseMiB"] + m["requestPerAgentKiB"] * max_agents / 1024)
    limit = math.ceil(m["limitBaseMiB"] + m["limitPerAgentKiB"] * max_agents / 1024)
    return f"{request}Mi", f"{limit}Mi"


@check("server memory follows maxAgents (formula with the values.yaml coefficients)")
def _():
    v = yaml.safe_load(open(CHART / "values.yaml"))["server"]
    m = v["memory"]
    d = render()
    assert env(container(one(d, "Deployment")))["NETCHECKER_MAX_AGENTS"]["value"] == str(v["maxAgents"])
    assert server_memory(d) == expected_memory(v["maxAgents"], m)
    for n in (500, 10000):
        d = render(f"server.maxAgents={n}")
        assert env(container(one(d, "Deployment")))["NETCHECKER_MAX_AGENTS"]["value"] == str(n)
        want = expected_memory(n, m)
        assert server_memory(d) == want, (n, server_memory(d), want)
    # Numbers from a values file reach templates as floats: no "1e+06".
    d = render(values={"server": {"maxAgents": 1000000}, "reportAuth": {"expirationSeconds": 2592000}})
    assert env(container(one(d, "Deployment")))["NETCHECKER_MAX_AGENTS"]["value"] == "1000000"
    assert server_memory(d) == expected_memory(1000000, m)
    sat = pod_spec(one(d, "DaemonSet", "netchecker-agent"))["volumes"][0]["projected"]["sources"][0]
    assert sat["serviceAccountToken"]["expirationSeconds"] == 2592000, sat
    # CPU stays as given.
    r = container(one(render(), "Deployment"))["resources"]
    assert r["requests"]["cpu"] == v["resources"]["requests"]["cpu"] and r["limits"]["cpu"] == v["resources"]["limits"]["cpu"]


@check("server memory arithmetic with set coefficients: 2000 and 10000 agents, rounding up")
def _():
    coeff = {"requestBaseMiB": 32, "requestPerAgentKiB": 4, "limitBaseMiB": 64, "limitPerAgentKiB": 128}
    # 32 + 4 * 2000 / 1024 = 39.8 -> 40; 64 + 128 * 2000 / 1024 = 314.
    assert server_memory(render(values={"server": {"maxAgents": 2000, "memory": coeff}})) == ("40Mi", "314Mi")
    # 32 + 4 * 10000 / 1024 = 71.06 -> 72; 64 + 128 * 10000 / 1024 = 1314.
    assert server_memory(render(values={"server": {"maxAgents": 10000, "memory": coeff}})) == ("72Mi", "1314Mi")
    # 30 + 10 * 1000 / 1024 = 39.77 -> 40; 50 + 1.5 * 1000 / 1024 = 51.46 -> 52.
    coeff = {"requestBaseMiB": 30, "requestPerAgentKiB": 10, "limitBaseMiB": 50, "limitPerAgentKiB": 1.5}
    assert server_memory(render(values={"server": {"maxAgents": 1000, "memory": coeff}})) == ("40Mi", "52Mi")


@check("explicit server.resources memory wins over the formula")
def _():
    res = {"requests": {"cpu": "50m", "memory": "300Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    d = render(values={"server": {"maxAgents": 10000, "resources": res}})
    assert container(one(d, "Deployment"))["resources"] == res
    # Either memory value alone counts as explicit: nothing is computed then.
    assert server_memory(render("server.resources.limits.memory=2Gi", "server.maxAgents=10000")) == (None, "2Gi")
    assert server_memory(render("server.resources.requests.memory=900Mi")) == ("900Mi", None)


@check("--max-agents outside server.maxAgents is refused (the memory would not follow)")
def _():
    for bad in (["--set", "server.extraArgs={--max-agents=10000}"], ["--set-json", 'server.args=["-max-agents", "10"]'],
                ["--set", "server.extraEnv[0].name=NETCHECKER_MAX_AGENTS", "--set", "server.extraEnv[0].value=9"]):
        r = subprocess.run(["helm", "template", "x", str(CHART), *bad], capture_output=True, text=True)
        assert r.returncode != 0 and "server.maxAgents" in r.stderr, (bad, r.stderr)
    assert render("server.extraArgs={--max-agents-note=x}")  # only the flag itself


@check("agents: downward API env and arguments from values")
def _():
    d = render("agent.reportInterval=15", "agent.zeroExtenderLength=3000",
               "agent.probeUrls={http://a.example/,http://b.example/x}")
    for ds in [x for x in d if x["kind"] == "DaemonSet"]:
        c = container(ds)
        e = env(c)
        assert e["MY_POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert e["MY_NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
        a = c["args"]
        assert "--serverendpoint=netchecker-reports:8081" in a, a
        assert "--reportinterval=15" in a and "--zeroextenderlength=3000" in a
        assert "--probeurls=http://a.example/,http://b.example/x" in a


@check("agents follow a renamed Service (reporting to it); an explicit endpoint wins")
def _():
    d = render("server.service.name=nc", "server.service.port=9000", *ORIGINAL_LAYOUT)
    c = container(one(d, "DaemonSet", "netchecker-agent"))
    assert "--serverendpoint=nc:9000" in c["args"]
    # Reporting to every replica: the headless Service on the container port.
    d = render("server.service.name=nc", "server.service.port=9000", "server.port=8088",
               "server.reportsService.name=nc-all")
    c = container(one(d, "DaemonSet", "netchecker-agent"))
    assert "--serverendpoint=nc-all:8088" in c["args"], c["args"]
    assert one(d, "Service", "nc-all")["spec"]["ports"] == [
        {"name": "http", "port": 8088, "targetPort": "http", "protocol": "TCP"}]
    for layout in ((), ORIGINAL_LAYOUT):
        d = render("agent.serverEndpoint=netchecker.example:8081", *layout)
        assert "--serverendpoint=netchecker.example:8081" in container(one(d, "DaemonSet", "netchecker-agent"))["args"]


@check("hardened by default: non-root 65532, read-only root, no capabilities, seccomp")
def _():
    for obj in [x for x in render() if x["kind"] in ("Deployment", "DaemonSet")]:
        spec = obj["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 65532
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = container(obj)["securityContext"]
        for k, v in HARDENED.items():
            assert sc[k] == v, f"{obj['metadata']['name']}: {k}"
        assert sc["capabilities"] == {"drop": ["ALL"]}
        r = container(obj)["resources"]
        assert r["requests"]["cpu"] and r["requests"]["memory"] and r["limits"]["memory"]
    ds = one(render(), "DaemonSet", "netchecker-agent")
    assert container(ds)["resources"]["requests"] == {"cpu": "15m", "memory": "64Mi"}


@check("log level becomes RUST_LOG; rustLog wins; empty level leaves -v in charge")
def _():
    c = container(one(render("server.logLevel=debug"), "Deployment"))
    assert "netchecker_server=debug" in env(c)["RUST_LOG"]["value"]
    assert "--log-format=plain" in c["args"]
    c = container(one(render("server.rustLog=trace", "server.logFormat=json"), "Deployment"))
    assert env(c)["RUST_LOG"]["value"] == "trace" and "--log-format=json" in c["args"]
    c = container(one(render("server.logLevel="), "Deployment"))
    assert "RUST_LOG" not in env(c)
    c = container(one(render("agent.logLevel="), "DaemonSet", "netchecker-agent"))
    assert "RUST_LOG" not in env(c) and "MY_POD_NAME" in env(c)


@check("webhooks: URLs as flags, or from a Secret; none by default")
def _():
    c = container(one(render(), "Deployment"))
    assert not any("webhook" in a for a in c["args"]) and "NETCHECKER_WEBHOOK_URL" not in env(c)
    c = container(one(render("server.webhooks.urls={https://hooks.example.com/a,http://relay:9000/b}",
                             "server.webhooks.maxAttempts=3"), "Deployment"))
    assert [a for a in c["args"] if "webhook" in a] == [
        "--webhook-url=https://hooks.example.com/a", "--webhook-url=http://relay:9000/b",
        "--webhook-timeout=10", "--webhook-max-attempts=3"], c["args"]
    c = container(one(render("server.webhooks.existingSecret=hooks"), "Deployment"))
    assert env(c)["NETCHECKER_WEBHOOK_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "hooks", "key": "webhook-urls"}}
    assert not any(a.startswith("--webhook-url") for a in c["args"])


@check("args override, extraArgs and extraEnv")
def _():
    d = render(values={"server": {"args": ["-v", "5", "-logtostderr"], "extraArgs": ["--request-timeout=5"]},
                       "agent": {"extraEnv": [{"name": "A", "value": "b"}]}})
    assert container(one(d, "Deployment"))["args"] == ["-v", "5", "-logtostderr", "--request-timeout=5"]
    assert env(container(one(d, "DaemonSet", "netchecker-agent")))["A"]["value"] == "b"


@check("scheduling knobs reach the pods")
def _():
    d = render("agent.priorityClassName=system-node-critical", "agent.nodeSelector.kubernetes\\.io/os=linux",
               "server.tolerations[0].operator=Exists", "agent.tolerations=null")
    ds = one(d, "DaemonSet", "netchecker-agent")["spec"]["template"]["spec"]
    assert ds["priorityClassName"] == "system-node-critical"
    assert ds["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert "tolerations" not in ds
    assert one(d, "Deployment")["spec"]["template"]["spec"]["tolerations"] == [{"operator": "Exists"}]


@check("NodePort 31081 and images with tag or digest")
def _():
    d = render("server.service.type=NodePort", "server.service.nodePort=31081",
               "server.image.repository=r.example/s", "server.image.tag=1.2.3",
               "agent.image.digest=sha256:" + "a" * 64)
    assert one(d, "Service", "netchecker-service")["spec"]["ports"][0]["nodePort"] == 31081
    # The headless Service is no NodePort: agents only.
    assert "nodePort" not in one(d, "Service", "netchecker-reports")["spec"]["ports"][0]
    assert container(one(d, "Deployment"))["image"] == "r.example/s:1.2.3"
    assert container(one(d, "DaemonSet", "netchecker-agent"))["image"] == "netchecker-agent@sha256:" + "a" * 64


@check("one agent variant can be switched off")
def _():
    d = render("agent.hostNetwork.enabled=false")
    assert [x["metadata"]["name"] for x in d if x["kind"] == "DaemonSet"] == ["netchecker-agent"]


def np_peers(np):
    """The peers of the policy's single ingress rule; asserts the rule's shape."""
    spec = np["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    for rule in spec["ingress"]:
        assert rule.get("from"), f"an ingress rule without peers admits every source: {rule}"
        assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert len(spec["ingress"]) <= 1
    return spec["ingress"][0]["from"] if spec["ingress"] else []


@check("NetworkPolicy (defaults): the release's pod-network agents only, never any source")
def _():
    d = render("networkPolicy.enabled=true", release="prod", namespace="ops")
    np = one(d, "NetworkPolicy", "prod-netchecker-server")
    assert np["metadata"]["namespace"] == "ops"
    server_labels = one(d, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert all(server_labels.get(k) == v for k, v in np["spec"]["podSelector"]["matchLabels"].items())
    peers = np_peers(np)
    agent_labels = one(d, "DaemonSet", "prod-netchecker-agent")["spec"]["template"]["metadata"]["labels"]
    # Same namespace as the policy (no namespaceSelector), this release's agents only.
    assert peers[0] == {"podSelector": {"matchLabels": {
        "app": "netchecker-agent", "app.kubernetes.io/component": "netchecker-agent",
        "app.kubernetes.io/instance": "prod", "app.kubernetes.io/name": "netchecker"}}}, peers[0]
    assert all(agent_labels.get(k) == v for k, v in peers[0]["podSelector"]["matchLabels"].items())
    assert len(peers) == 1, peers


@check("NetworkPolicy: node CIDRs for host-network agents, Prometheus selectors, extra peers")
def _():
    d = render(values={"networkPolicy": {
        "enabled": True, "nodeCIDRs": ["10.0.0.0/16", "fd00:10::/64"],
        "prometheus": {"namespaceSelector": {"matchLabels": {"team": "obs"}},
                       "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
        "extraFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}]}})
    peers = np_peers(one(d, "NetworkPolicy", "netchecker-server"))
    assert peers[1:] == [
        {"ipBlock": {"cidr": "10.0.0.0/16"}}, {"ipBlock": {"cidr": "fd00:10::/64"}},
        {"namespaceSelector": {"matchLabels": {"team": "obs"}},
         "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}], peers
    # Prometheus in the release namespace: a pod selector alone.
    peers = np_peers(one(render(values={"networkPolicy": {"enabled": True, "prometheus": {
        "namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "prometheus"}}}}}), "NetworkPolicy", "netchecker-server"))
    assert peers[1:] == [{"podSelector": {"matchLabels": {"app": "prometheus"}}}], peers
    # Namespaces only: every pod there.
    peers = np_peers(one(render(values={"networkPolicy": {"enabled": True, "prometheus": {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}}}), "NetworkPolicy", "netchecker-server"))
    assert peers[1:] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}], peers
    r = subprocess.run(["helm", "template", "x", str(CHART), "--set", "networkPolicy.nodeCIDRs={10.0.0.0}"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "nodeCIDRs" in r.stderr, r.stderr


@check("NetworkPolicy: with no peer at all nothing is admitted (never an open rule)")
def _():
    np = one(render(values={"agent": {"podNetwork": {"enabled": False}}, "networkPolicy": {"enabled": True}}),
             "NetworkPolicy", "netchecker-server")
    assert np["spec"]["ingress"] == [] and np["spec"]["policyTypes"] == ["Ingress"], np["spec"]
    # Pod-network agents off: their peer goes, the node CIDRs stay.
    peers = np_peers(one(render(values={"agent": {"podNetwork": {"enabled": False}}, "networkPolicy": {
        "enabled": True, "nodeCIDRs": ["10.0.0.0/16"]}}), "NetworkPolicy", "netchecker-server"))
    assert peers[0] == {"ipBlock": {"cidr": "10.0.0.0/16"}}, peers


MESH_ENV = ("NETCHECKER_MESH_PEERS", "NETCHECKER_MESH_ROUND", "NETCHECKER_MESH_SLOW", "NETCHECKER_MESH_TIMEOUT")


def value(c, name):
    return env(c)[name]["value"]


@check("mesh (default on): server settings, agents on ports 8090 (pod) and 8091 (host, a host port)")
def _():
    d = render()
    c = container(one(d, "Deployment"))
    assert [value(c, k) for k in MESH_ENV] == ["8", "60", "1", "2"], [env(c).get(k) for k in MESH_ENV]
    assert not any("mesh" in a for a in c["args"]), "passed as environment, not as flags"
    for name, port, host in (("netchecker-agent", 8090, False), ("netchecker-agent-hostnet", 8091, True)):
        ac = container(one(d, "DaemonSet", name))
        assert value(ac, "NETCHECKER_MESH_PORT") == str(port)
        assert env(ac)["MY_POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
        want = {"name": "mesh", "containerPort": port, "protocol": "TCP"}
        if host:
            want["hostPort"] = port
        assert ac["ports"] == [want], ac["ports"]
        assert not any("mesh" in a for a in ac["args"]), "passed as environment: agent.args keep it"


@check("mesh: the round follows agent.reportInterval unless mesh.round is set; values reach the server")
def _():
    c = container(one(render("agent.reportInterval=15"), "Deployment"))
    assert value(c, "NETCHECKER_MESH_ROUND") == "15"
    d = render(values={"agent": {"reportInterval": 15}, "mesh": {
        "round": 30, "peers": 16, "slow": 0.5, "timeout": 1.5, "podPort": 9000, "hostPort": 9001}})
    c = container(one(d, "Deployment"))
    assert [value(c, k) for k in MESH_ENV] == ["16", "30", "0.5", "1.5"]
    assert value(container(one(d, "DaemonSet", "netchecker-agent")), "NETCHECKER_MESH_PORT") == "9000"
    host = container(one(d, "DaemonSet", "netchecker-agent-hostnet"))
    assert value(host, "NETCHECKER_MESH_PORT") == "9001"
    assert host["ports"][0]["containerPort"] == host["ports"][0]["hostPort"] == 9001
    # The ci values switch everything on: their agents report every 15 s.
    c = container(one(render(values=CHART / "ci/all-on-values.yaml"), "Deployment"))
    assert value(c, "NETCHECKER_MESH_ROUND") == "15"


@check("mesh: a ClusterRole to read nodes, bound to the server's ServiceAccount")
def _():
    d = render(release="prod", namespace="ops")
    role = one(d, "ClusterRole", "prod-netchecker-server-nodes")
    assert role["rules"] == NODES_READ and "namespace" not in role["metadata"], role
    b = one(d, "ClusterRoleBinding", "prod-netchecker-server-nodes")
    assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "prod-netchecker-server-nodes"}
    assert b["subjects"] == [{"kind": "ServiceAccount", "name": "prod-netchecker-server", "namespace": "ops"}]
    # Beside the pod watch's ClusterRole, not instead of it.
    d = render("server.watchAllNamespaces=true")
    assert one(d, "ClusterRole", NODES_ROLE)["rules"] == NODES_READ
    assert one(d, "ClusterRole", "netchecker-server")["rules"] == PODS_READ
    assert not [x for x in render("rbac.create=false") if x["kind"] in RBAC_KINDS]


@check("leader election: a Role on the one Lease, POD_NAME/POD_NAMESPACE, off without grants")
def _():
    d = render(namespace="ops")
    c = container(one(d, "Deployment"))
    assert value(c, "NETCHECKER_LEADER_ELECTION") == "true"
    assert value(c, "NETCHECKER_LEADER_ELECTION_LEASE") == "netchecker-server"
    assert env(c)["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env(c)["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    role = one(d, "Role", "netchecker-server-lease")
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["netchecker-server"],
         "verbs": ["get", "update"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["netchecker-incidents"],
         "verbs": ["get", "update"]},
    ], role["rules"]
    assert value(c, "NETCHECKER_INCIDENTS_CONFIGMAP") == "netchecker-incidents"
    b = one(d, "RoleBinding", "netchecker-server-lease")
    assert b["subjects"] == [{"kind": "ServiceAccount", "name": "netchecker-server", "namespace": "ops"}]
    d = render("server.leaderElection.leaseName=nc-leader", "server.leaderElection.incidentsConfigMap=nc-open")
    assert value(container(one(d, "Deployment")), "NETCHECKER_LEADER_ELECTION_LEASE") == "nc-leader"
    assert value(container(one(d, "Deployment")), "NETCHECKER_INCIDENTS_CONFIGMAP") == "nc-open"
    assert one(d, "Role", "netchecker-server-lease")["rules"][1]["resourceNames"] == ["nc-leader"]
    assert one(d, "Role", "netchecker-server-lease")["rules"][3]["resourceNames"] == ["nc-open"]
    d = render("server.leaderElection.enabled=false", "server.nodeConditions.enabled=false")
    c = container(one(d, "Deployment"))
    assert not {"NETCHECKER_LEADER_ELECTION", "NETCHECKER_INCIDENTS_CONFIGMAP", "NETCHECKER_NODE_CONDITIONS",
                "POD_NAME"} & set(env(c))
    assert not [x for x in d if x["metadata"]["name"].endswith(("-server-lease", "-server-node-status"))]


@check("node conditions: a ClusterRole on nodes/status and events, only with server.nodeConditions")
def _():
    d = render()
    c = container(one(d, "Deployment"))
    assert value(c, "NETCHECKER_NODE_CONDITIONS") == "true"
    role = one(d, "ClusterRole", "netchecker-server-node-status")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["get", "patch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ], role["rules"]
    b = one(d, "ClusterRoleBinding", "netchecker-server-node-status")
    assert b["roleRef"]["name"] == "netchecker-server-node-status"
    d = render("server.nodeConditions.enabled=false")
    assert "NETCHECKER_NODE_CONDITIONS" not in env(container(one(d, "Deployment")))
    assert not [x for x in d if x["metadata"]["name"].endswith("-server-node-status")]
    assert one(d, "Role", "netchecker-server-lease")


@check("mesh off: no peers, agents without port, MY_POD_IP or container port, no ClusterRole")
def _():
    d = render("mesh.enabled=false")
    c = container(one(d, "Deployment"))
    assert value(c, "NETCHECKER_MESH_PEERS") == "0"
    assert not [k for k in MESH_ENV[1:] if k in env(c)]
    for ds in daemonsets(d):
        ac = container(ds)
        assert value(ac, "NETCHECKER_MESH_PORT") == "0"
        assert "MY_POD_IP" not in env(ac) and "ports" not in ac
    assert not [x for x in d if x["kind"].startswith("Cluster") and x["metadata"]["name"].endswith("-server-nodes")]
    d = render("mesh.enabled=false", "networkPolicy.enabled=true")
    assert [x["metadata"]["name"] for x in d if x["kind"] == "NetworkPolicy"] == ["netchecker-server"]


@check("mesh survives replaced arguments (the Go-style example)")
def _():
    d = render(values=ROOT / "examples/values-go-style-flags.yaml")
    assert value(container(one(d, "Deployment")), "NETCHECKER_MESH_PEERS") == "8"
    assert {value(container(ds), "NETCHECKER_MESH_PORT") for ds in daemonsets(d)} == {"8090", "8091"}


@check("NetworkPolicy: the pod-network agents admit mesh probes from each other only")
def _():
    d = render("networkPolicy.enabled=true", release="prod", namespace="ops")
    np = one(d, "NetworkPolicy", "prod-netchecker-agent-mesh")
    assert np["metadata"]["namespace"] == "ops"
    labels = {"app": "netchecker-agent", "app.kubernetes.io/component": "netchecker-agent",
              "app.kubernetes.io/instance": "prod", "app.kubernetes.io/name": "netchecker"}
    pod_labels = one(d, "DaemonSet", "prod-netchecker-agent")["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels.get(k) == v for k, v in labels.items())
    host_labels = one(d, "DaemonSet", "prod-netchecker-agent-hostnet")["spec"]["template"]["metadata"]["labels"]
    assert not all(host_labels.get(k) == v for k, v in labels.items()), "the host-network agents are not selected"
    assert np["spec"] == {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"], "ingress": [
        {"ports": [{"port": "mesh", "protocol": "TCP"}], "from": [{"podSelector": {"matchLabels": labels}}]}]}, np
    # The named port is the agents' container port.
    assert container(one(d, "DaemonSet", "prod-netchecker-agent"))["ports"][0]["name"] == "mesh"
    d = render("networkPolicy.enabled=true", "agent.podNetwork.enabled=false")
    assert [x["metadata"]["name"] for x in d if x["kind"] == "NetworkPolicy"] == ["netchecker-server"]


@check("mesh: the schema refuses peers outside 1..32, a round over an hour, port 0")
def _():
    for bad in ("mesh.peers=0", "mesh.peers=33", "mesh.round=3601", "mesh.podPort=0", "mesh.hostPort=70000",
                "mesh.timeout=0", "agent.reportInterval=3601"):
        r = subprocess.run(["helm", "template", "x", str(CHART), "--set", bad], capture_output=True, text=True)
        assert r.returncode != 0 and bad.split("=")[0].split(".")[1] in r.stderr, (bad, r.stderr)


def fails(*args):
    """helm template with these arguments; the error text, or None when it renders."""
    r = subprocess.run(["helm", "template", "netchecker", str(CHART), *args], capture_output=True, text=True)
    return None if r.returncode == 0 else r.stderr


@check("HA (default): 2 replicas, surge before stop, PDB, soft spread over nodes")
def _():
    d = render()
    dep = one(d, "Deployment", "netchecker-server")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}, dep["spec"]["strategy"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in SERVER_POD_LABELS.items()), labels
    pdb = one(d, "PodDisruptionBudget", "netchecker-server")
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": SERVER_POD_LABELS}}, pdb["spec"]
    assert pod_spec(dep)["affinity"] == {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                            "labelSelector": {"matchLabels": SERVER_POD_LABELS}}}]}}, pod_spec(dep)
    assert "topologySpreadConstraints" not in pod_spec(dep)


@check("HA (default): a headless reports Service (not-ready addresses too), agents report to all, ready when warm")
def _():
    d = render()
    svc = one(d, "Service", "netchecker-service")
    hl = one(d, "Service", "netchecker-reports")
    assert hl["spec"]["clusterIP"] == "None" and hl["spec"]["publishNotReadyAddresses"] is True, hl["spec"]
    assert hl["spec"]["selector"] == svc["spec"]["selector"] == SERVER_POD_LABELS
    assert hl["spec"]["ports"] == [{"name": "http", "port": 8081, "targetPort": "http", "protocol": "TCP"}]
    assert "type" not in hl["spec"] or hl["spec"]["type"] == "ClusterIP"
    # Selectors written for the original's Service (app=netchecker-server) do not pick it.
    assert "app" not in hl["metadata"]["labels"] and hl["metadata"]["labels"]["app.kubernetes.io/component"] == "server-reports"
    for ds in daemonsets(d):
        c = container(ds)
        assert "--serverendpoint=netchecker-reports:8081" in c["args"], c["args"]
        assert value(c, "NETCHECKER_REPORT_TO_ALL_ADDRESSES") == "true"
    c = container(one(d, "Deployment"))
    assert value(c, "NETCHECKER_READY_WHEN_WARM") == "true"
    assert not any("ready-when-warm" in a for a in c["args"]), "passed as environment: server.args keep it"
    # The agents' setting survives replaced arguments; the endpoint is then theirs.
    d = render(values={"agent": {"args": ["-serverendpoint=netchecker-reports:8081"]}})
    assert {value(container(ds), "NETCHECKER_REPORT_TO_ALL_ADDRESSES") for ds in daemonsets(d)} == {"true"}


@check("server.replicas=1, agent.reportToAllAddresses=false: the original's layout for its Go agents")
def _():
    d = render(*ORIGINAL_LAYOUT)
    assert sorted(x["kind"] for x in d) == ["ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding",
                                          "DaemonSet", "DaemonSet", "Deployment", "Role", "Role", "RoleBinding",
                                          "RoleBinding", "Service", "ServiceAccount", "ServiceAccount"]
    dep = one(d, "Deployment", "netchecker-server")
    assert dep["spec"]["replicas"] == 1
    assert "affinity" not in pod_spec(dep) and "topologySpreadConstraints" not in pod_spec(dep)
    assert "NETCHECKER_READY_WHEN_WARM" not in env(container(dep)), "it would wait out the whole grace"
    for ds in daemonsets(d):
        c = container(ds)
        assert "--serverendpoint=netchecker-service:8081" in c["args"], c["args"]
        assert "NETCHECKER_REPORT_TO_ALL_ADDRESSES" not in env(c)
    # One replica reached through the headless Service: warm-up gating is fine there too.
    d = render("server.replicas=1")
    assert value(container(one(d, "Deployment")), "NETCHECKER_READY_WHEN_WARM") == "true"
    assert not [x for x in d if x["kind"] == "PodDisruptionBudget"]
    assert "affinity" not in pod_spec(one(d, "Deployment"))


@check("several replicas without reportToAllAddresses are refused (each would see part of the reports)")
def _():
    err = fails("--set", "agent.reportToAllAddresses=false")
    assert err and "agent.reportToAllAddresses" in err, err
    err = fails("--set", "server.replicas=3", "--set", "agent.reportToAllAddresses=false")
    assert err and "server.replicas=3" in err, err
    for bad in ("server.replicas=0", "server.podAntiAffinity=always", "server.strategy.type=Rolling",
                "server.podDisruptionBudget.minAvailable=-1", "metrics.prometheusRule.replicaLabels={bad-label}"):
        err = fails("--set", bad)
        assert err and bad.split("=")[0].split(".")[-1] in err, (bad, err)


@check("readyWhenWarm: explicit true or false wins over the default")
def _():
    c = container(one(render(*ORIGINAL_LAYOUT, "server.readyWhenWarm=true"), "Deployment"))
    assert value(c, "NETCHECKER_READY_WHEN_WARM") == "true"
    c = container(one(render("server.readyWhenWarm=false"), "Deployment"))
    assert "NETCHECKER_READY_WHEN_WARM" not in env(c)
    # Replaced arguments keep it (environment).
    c = container(one(render(values={"server": {"args": ["-v", "5", "-endpoint", "0.0.0.0:8081"]}}), "Deployment"))
    assert value(c, "NETCHECKER_READY_WHEN_WARM") == "true"


@check("PDB: off with podDisruptionBudget.enabled=false; maxUnavailable wins; percentages")
def _():
    assert not [x for x in render("server.podDisruptionBudget.enabled=false") if x["kind"] == "PodDisruptionBudget"]
    pdb = one(render("server.podDisruptionBudget.maxUnavailable=1"), "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"], pdb["spec"]
    pdb = one(render(values={"server": {"replicas": 4, "podDisruptionBudget": {"minAvailable": "50%"}}}),
              "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == "50%", pdb["spec"]


@check("spread: hard anti-affinity, none, the user's own wins, other affinity kept, topology spread")
def _():
    aff = pod_spec(one(render("server.podAntiAffinity=hard"), "Deployment"))["affinity"]
    assert aff == {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": SERVER_POD_LABELS}}]}}, aff
    assert "affinity" not in pod_spec(one(render("server.podAntiAffinity="), "Deployment"))
    own = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 5, "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone",
                                          "labelSelector": {"matchLabels": {"app": "netchecker-server"}}}}]}}
    assert pod_spec(one(render(values={"server": {"affinity": own}}), "Deployment"))["affinity"] == own
    node = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}}
    aff = pod_spec(one(render(values={"server": {"affinity": node}}), "Deployment"))["affinity"]
    assert aff["nodeAffinity"] == node["nodeAffinity"] and "podAntiAffinity" in aff, aff
    tsc = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"},
           {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"tier": "x"}}}]
    got = pod_spec(one(render(values={"server": {"topologySpreadConstraints": tsc}}), "Deployment"))["topologySpreadConstraints"]
    assert got == [dict(tsc[0], labelSelector={"matchLabels": SERVER_POD_LABELS}), tsc[1]], got


@check("strategy: Recreate drops the default rollingUpdate block")
def _():
    dep = one(render("server.strategy.type=Recreate"), "Deployment")
    assert dep["spec"]["strategy"] == {"type": "Recreate"}, dep["spec"]["strategy"]


@check("PrometheusRule: replicaLabels reach every aggregation, nothing per replica is left")
def _():
    import re
    pr = one(render("metrics.prometheusRule.enabled=true", "metrics.prometheusRule.replicaLabels={instance,pod,node}"),
             "PrometheusRule")
    exprs = [r["expr"] for r in pr["spec"]["groups"][0]["rules"]]
    joined = "\n".join(exprs)
    assert "without (instance, pod)" not in joined and "ignoring (instance, pod)" not in joined
    assert "without (instance, pod, node)" in joined and "ignoring (instance, pod, node)" in joined
    # Every rule but the per-replica ones (down, restarts) aggregates the replicas away.
    per_replica = {"NetcheckerServerReplicaDown", "NetcheckerServerRestarting"}
    for r in pr["spec"]["groups"][0]["rules"]:
        if r["alert"] not in per_replica:
            assert re.search(r"(max|min) without \(instance, pod, node\)", r["expr"]), (r["alert"], r["expr"])


@check("ServiceMonitor selects the Service's port http")
def _():
    d = render("metrics.serviceMonitor.enabled=true")
    sm = one(d, "ServiceMonitor")
    svc = one(d, "Service", "netchecker-service")
    # Exactly one Service: a replica scraped through the headless one too
    # would give every series twice, under another job.
    selected = [x["metadata"]["name"] for x in d if x["kind"] == "Service" and
                all(x["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())]
    assert selected == ["netchecker-service"], selected
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"] == "http"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["netchecker"]}


@check("Grafana dashboard ConfigMap carries the dashboard and the sidecar label")
def _():
    cm = one(render("metrics.grafanaDashboard.enabled=true"), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    import json
    assert json.loads(cm["data"]["netchecker.json"]) == json.load(open(CHART / "files/grafana-dashboard.json"))


@check("PrometheusRule: extra alert labels added, rule labels kept")
def _():
    pr = one(render("metrics.prometheusRule.enabled=true", "metrics.prometheusRule.additionalAlertLabels.team=net"), "PrometheusRule")
    for r in pr["spec"]["groups"][0]["rules"]:
        assert r["labels"]["team"] == "net" and r["labels"]["severity"]


@check("IP families: single stack by default; IPv6 and dual-stack set the Services and listen on [::]")
def _():
    d = render()
    assert "--endpoint=0.0.0.0:8081" in container(one(d, "Deployment"))["args"]
    for svc in (x for x in d if x["kind"] == "Service"):
        assert "ipFamilies" not in svc["spec"] and "ipFamilyPolicy" not in svc["spec"], svc["spec"]
    d = render("ipFamilies={IPv4,IPv6}", "ipFamilyPolicy=RequireDualStack")
    assert "--endpoint=[::]:8081" in container(one(d, "Deployment"))["args"]
    services = [x for x in d if x["kind"] == "Service"]
    assert len(services) == 2, services
    for svc in services:
        assert svc["spec"]["ipFamilies"] == ["IPv4", "IPv6"], svc["spec"]
        assert svc["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    d = render("ipFamilies={IPv6}")
    assert "--endpoint=[::]:8081" in container(one(d, "Deployment"))["args"]
    # An explicit address wins.
    d = render("ipFamilies={IPv6}", "server.listenAddress=10.0.0.1")
    assert "--endpoint=10.0.0.1:8081" in container(one(d, "Deployment"))["args"]


@check("optional parts are off by default")
def _():
    kinds = {x["kind"] for x in render()}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ConfigMap", "NetworkPolicy"}


@check("schema rejects a wrong value")
def _():
    r = subprocess.run(["helm", "template", "x", str(CHART), "--set", "server.logFormat=xml"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "logFormat" in r.stderr, r.stderr


@check("every key of values.yaml is documented in doc/deployment.md")
def _():
    values = yaml.safe_load(open(CHART / "values.yaml"))
    doc = (ROOT / "doc/deployment.md").read_text()
    # Blocks documented as a whole rather than key by key.
    whole = {"server.resources", "agent.resources", "server.podSecurityContext", "server.securityContext",
             "agent.podSecurityContext", "agent.securityContext", "server.livenessProbe",
             "server.readinessProbe", "agent.updateStrategy", "metrics.grafanaDashboard.labels", "server.strategy"}

    def keys(d, prefix=""):
        for k, v in d.items():
            key = prefix + k
            if isinstance(v, dict) and v and key not in whole:
                yield from keys(v, key + ".")
            else:
                yield key

    missing = [k for k in keys(values) if f"| `{k}` |" not in doc]
    assert not missing, f"undocumented values: {missing}"


if failures:
    print(f"check-chart: {len(failures)} check(s) failed: {', '.join(failures)}", file=sys.stderr)
    sys.exit(1)
print("check-chart: OK")
