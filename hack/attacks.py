#!/usr/bin/env python3
"""Replays the attacks of the trust work (doc/security.md, "What a client
could do") against a server deployed with the Helm chart's defaults, and
checks that each is refused while real agents keep reporting.

    python3 hack/attacks.py [--bin-dir DIR]

DIR holds netchecker-server and netchecker-fake-apiserver (default
$ATTACKS_BIN_DIR, else $CARGO_TARGET_DIR/release, else target/release).

The set-up, on 127.0.0.1 only:

  - netchecker-fake-apiserver holding 20 nodes with two agent pods each
    (netchecker-agent-XXXXX and netchecker-agent-hostnet-XXXXX, as the
    chart's DaemonSets name them); it is the service-account issuer whose
    tokens the server verifies;
  - netchecker-server with KUBECONFIG pointing at it and the chart's
    default arguments and environment (report auth enforce, audience
    netchecker, NETCHECKER_MAX_AGENTS 2000, the mesh on, no read token);
  - "real agents": a small thread pool posting each pod's report with the
    pod's own token every second, except for the victim node (node-20),
    whose two agents report once with a 1 s interval and are then cut off,
    so that it must stay Outdated;
  - a monitor sampling the server's RSS every 0.2 s and the v1 check every
    0.5 s: the check must name exactly the victim's two agents as absent or
    outdated, and nothing else, throughout.

Then the attacks, each followed by what must hold. A second, short server
(--kube=false, --read-token-file, --expected-agents) covers DELETE and the
read token. Prints a results table and exits 1 if anything did not hold.
Processes are stopped by the PIDs this script started, also on failure or
Ctrl-C.
"""

import argparse
import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "crates/wire/tests/fixtures/go-agent-report.json")
NS = "netchecker"
NODES = 20
VICTIM_NODE = f"node-{NODES:02d}"
MAX_AGENTS = 2000
# The chart's memory limit (helm-chart/values.yaml, server.memory):
# limitBaseMiB + limitPerAgentKiB * maxAgents / 1024, rounded up.
LIMIT_MIB = -(-(64 * 1024 + 128 * MAX_AGENTS) // 1024)
# The original's 51 bytes: the JSON and the newline `echo` adds.
FORGED_BODY = b'{"report_interval":1000000000,"nodename":"node-a"}\n'


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, method, path, body=None, token=None, headers=None, timeout=10.0):
    """(status, body bytes, seconds); status 0 when no answer came."""
    h = dict(headers or {})
    if body is not None:
        h.setdefault("Content-Type", "application/json")
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    t = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        return r.status, data, time.monotonic() - t
    except (OSError, http.client.HTTPException):
        # A server that refuses a large body before reading it may close
        # while it is being sent: read the answer it wrote, if any.
        if conn.sock is None:
            return 0, b"", time.monotonic() - t
        try:
            r = conn.getresponse()
            return r.status, r.read(), time.monotonic() - t
        except (OSError, http.client.HTTPException):
            return 0, b"", time.monotonic() - t
    finally:
        conn.close()


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


class Procs:
    """The processes this script started; stop() signals exactly those."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, env=None, stdout=None, stderr=None):
        p = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr,
                             stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def stop(self, p, secs=5):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(secs)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)


def wait_for(check, secs, what):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def suffix(*parts):
    h = hashlib.sha256("/".join(parts).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(h[i:i + 2], 16) % len(alphabet)] for i in range(0, 10, 2))


def hostdate():
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


class Cluster:
    """The fake API server's pods and their tokens."""

    def __init__(self, port):
        self.port = port
        self.pods = {}  # name -> (node, kind)
        self.tokens = {}

    def ctl(self, path, body):
        st, data, _ = request(self.port, "POST", path, json.dumps(body).encode())
        if st not in (200, 201):
            raise RuntimeError(f"fake apiserver {path}: {st} {data[:200]!r}")
        return json.loads(data)

    def add_node(self, node):
        self.ctl("/fake/build/node", {"name": node})
        names = []
        for kind in ("netchecker-agent", "netchecker-agent-hostnet"):
            name = f"{kind}-{suffix(node, kind)}"
            self.ctl("/fake/build/pod", {"namespace": NS, "name": name, "app": kind, "node": node})
            self.tokens[name] = self.ctl("/fake/tokens", {"namespace": NS, "pod": name})["token"]
            self.pods[name] = (node, kind)
            names.append(name)
        return names


class Agents:
    """Real agents: every pod's report, with its own token, every second."""

    def __init__(self, port, cluster, template):
        self.port = port
        self.cluster = cluster
        self.template = template
        self.active = set()
        self.paused = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.sent = 0
        self.bad = []  # (name, status)
        self.latencies = []
        self.pool = concurrent.futures.ThreadPoolExecutor(4)
        self.thread = threading.Thread(target=self.run, daemon=True)

    def body(self, name, interval=None, probes=None):
        node, _ = self.cluster.pods[name]
        r = dict(self.template)
        r.update(podname=name, nodename=node, hostdate=hostdate())
        if interval is not None:
            r["report_interval"] = interval
        if probes is not None:
            r["network_probes"] = probes
        return json.dumps(r, separators=(",", ":")).encode()

    def post(self, name, **kw):
        return request(self.port, "POST", f"/api/v1/agents/{name}", self.body(name, **kw),
                       token=self.cluster.tokens[name])

    def one(self, name):
        st, data, secs = self.post(name)
        with self.lock:
            self.sent += 1
            self.latencies.append(secs)
            if st != 200:
                self.bad.append((name, st, data[:200]))

    def round(self):
        with self.lock:
            names = sorted(self.active - self.paused)
        list(self.pool.map(self.one, names))

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            self.round()
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - t)))

    def shutdown(self):
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(10)
        self.pool.shutdown(wait=True)


class Monitor:
    """Server RSS every 0.2 s; the v1 check every 0.5 s."""

    def __init__(self, port, pid, victims):
        self.port = port
        self.pid = pid
        self.victims = set(victims)
        self.tolerated = set()
        self.phase = "setup"
        self.peak = {}  # phase -> peak RSS KiB
        self.samples = []
        self.checks = 0
        self.wrong = []  # (phase, status, absent, outdated)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        next_check = 0.0
        while not self.stop.is_set():
            kib = rss_kib(self.pid)
            self.samples.append(kib)
            self.peak[self.phase] = max(self.peak.get(self.phase, 0), kib)
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 0.5
                self.check()
            self.stop.wait(0.2)

    def check(self):
        st, data, _ = request(self.port, "GET", "/api/v1/connectivity_check", timeout=5)
        self.checks += 1
        try:
            v = json.loads(data)
            absent, outdated = set(v.get("Absent") or []), set(v.get("Outdated") or [])
        except ValueError:
            absent, outdated = {"<unreadable>"}, set()
        failing = absent | outdated
        if failing - self.tolerated != self.victims:
            self.wrong.append((self.phase, st, sorted(absent), sorted(outdated)))

    def rss_now(self):
        return rss_kib(self.pid)


def metrics_lines(port, token=None):
    st, data, secs = request(port, "GET", "/metrics", token=token)
    lines = [l for l in data.decode("utf-8", "replace").splitlines() if l and not l.startswith("#")]
    return st, len(lines), len(data), secs


def server_env(kubeconfig):
    """The environment the chart gives the server (templates/server-deployment.yaml)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETCHECKER_")}
    env.update({
        "KUBECONFIG": kubeconfig,
        "NETCHECKER_NAMESPACE": NS,
        "NETCHECKER_MAX_AGENTS": str(MAX_AGENTS),
        "NETCHECKER_REPORT_AUTH": "enforce",
        "NETCHECKER_REPORT_AUTH_AUDIENCE": "netchecker",
        "NETCHECKER_MESH_PEERS": "8",
        "NETCHECKER_MESH_ROUND": "60",
        "NETCHECKER_MESH_SLOW": "1",
        "NETCHECKER_MESH_TIMEOUT": "2",
        "RUST_LOG": "warn,netchecker=info,netchecker_server=info,netchecker_agent=info,"
                    "netchecker_wire=info,netchecker_cli=info",
    })
    return env


def chart_args(port):
    return [f"--endpoint=127.0.0.1:{port}", "--kubeproxyinit=true", "--outdated-factor=2",
            "--check-interval=10", "--startup-grace=120", "--log-format=plain"]


def tcp_states(port):
    """{remote port: (state, bytes queued to send)} of the server's side of
    connections to `port`."""
    out = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            lport = int(parts[1].split(":")[1], 16)
            rport = int(parts[2].split(":")[1], 16)
            if lport == port:
                out[rport] = (parts[3], int(parts[4].split(":")[0], 16))
    return out


class Results:
    def __init__(self):
        self.rows = []

    def add(self, attack, before, after, held, note=""):
        self.rows.append((attack, before, after, held))
        log(f"{'HELD' if held else 'FAILED'}: {attack}: {after}" + (f" ({note})" if note else ""))

    def table(self):
        print("\n| Attack | Before | After | Held? |\n|---|---|---|---|")
        # In the report's order (7 runs last: it needs a server of its own).
        rows = sorted(self.rows, key=lambda r: (not r[0][0].isdigit(), r[0][0].isdigit() and int(r[0].split()[0])))
        for a, b, af, h in rows:
            print(f"| {a} | {b} | {af} | {'yes' if h else 'NO'} |")
        return all(r[3] for r in self.rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_bin = os.environ.get("ATTACKS_BIN_DIR") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release")
    ap.add_argument("--bin-dir", default=default_bin)
    args = ap.parse_args()
    for b in ("netchecker-server", "netchecker-fake-apiserver"):
        if not os.access(os.path.join(args.bin_dir, b), os.X_OK):
            sys.exit(f"attacks: {b} not found in {args.bin_dir} (set ATTACKS_BIN_DIR or --bin-dir)")
    # Ctrl-C and SIGTERM (also when started in the background, where SIGINT
    # is ignored) end the run through the same path: stop what was started.
    def interrupted(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    procs = Procs()
    tmp = tempfile.TemporaryDirectory(prefix="netchecker-attacks-")
    try:
        ok = run(args, procs, tmp.name)
    except KeyboardInterrupt:
        ok = False
        print("attacks: interrupted", file=sys.stderr)
    finally:
        procs.stop_all()
        tmp.cleanup()
    sys.exit(0 if ok else 1)


def run(args, procs, tmp):
    t_start = time.monotonic()
    res = Results()
    with open(FIXTURE) as f:
        template = json.load(f)

    # -- the cluster
    fa_out = open(os.path.join(tmp, "fake.out"), "w+")
    fa_err = open(os.path.join(tmp, "fake.err"), "w")
    kubeconfig = os.path.join(tmp, "kubeconfig")
    fa = procs.start([os.path.join(args.bin_dir, "netchecker-fake-apiserver"),
                      "--listen", "127.0.0.1:0", "--kubeconfig-out", kubeconfig],
                     stdout=fa_out, stderr=fa_err)

    def fake_addr():
        fa_out.seek(0)
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", fa_out.read())
        return m and int(m.group(1))
    wait_for(lambda: fake_addr() or fa.poll() is not None, 10, "the fake API server")
    if fa.poll() is not None:
        raise RuntimeError("the fake API server exited")
    cluster = Cluster(fake_addr())
    by_node = {}
    for i in range(1, NODES + 1):
        node = f"node-{i:02d}"
        by_node[node] = cluster.add_node(node)
    victims = by_node[VICTIM_NODE]
    log(f"fake API server: {NODES} nodes, {len(cluster.pods)} agent pods, tokens minted")

    # -- the server, as the chart runs it
    port = free_port()
    server_log = os.path.join(tmp, "server.log")
    slog = open(server_log, "w")
    srv = procs.start([os.path.join(args.bin_dir, "netchecker-server")] + chart_args(port),
                      env=server_env(kubeconfig), stdout=slog, stderr=subprocess.STDOUT)
    wait_for(lambda: request(port, "GET", "/readyz", timeout=1)[0] == 200 or srv.poll() is not None,
             15, "the server's /readyz")
    if srv.poll() is not None:
        raise RuntimeError("the server exited")
    log(f"server pid {srv.pid} on :{port}; chart memory limit for maxAgents {MAX_AGENTS}: {LIMIT_MIB} MiB")

    agents = Agents(port, cluster, template)
    monitor = Monitor(port, srv.pid, victims)
    try:
        return attacks(args, procs, tmp, res, cluster, by_node, victims, port, srv,
                       server_log, agents, monitor, t_start)
    finally:
        agents.shutdown()
        monitor.stop.set()
        if monitor.thread.is_alive():
            monitor.thread.join(5)


def attacks(args, procs, tmp, res, cluster, by_node, victims, port, srv, server_log,
            agents, monitor, t_start):
    # The victim's agents report once, with a 1 s interval, and are cut off.
    for v in victims:
        st, data, _ = agents.post(v, interval=1)
        if st != 200:
            raise RuntimeError(f"victim {v}'s own report: {st} {data[:200]!r}")
    agents.active = {n for n in cluster.pods if n not in victims}
    agents.round()
    if agents.bad:
        raise RuntimeError(f"real agents refused: {agents.bad[:3]}")
    agents.thread.start()
    time.sleep(2.5)  # the victim is outdated after 2 s
    monitor.thread.start()
    idle_rss = monitor.rss_now()
    _, m_lines0, m_bytes0, _ = metrics_lines(port)
    base_lat = sorted(agents.latencies)[len(agents.latencies) // 2]
    log(f"{len(agents.active)} real agents reporting every second; victim {VICTIM_NODE} "
        f"({', '.join(victims)}) cut off; RSS {mib(idle_rss)}; /metrics {m_lines0} series, "
        f"{m_bytes0} bytes; median report {base_lat * 1000:.1f} ms")

    def v2_node(node):
        st, data, _ = request(port, "GET", "/api/v2/status")
        for n in json.loads(data).get("nodes", []):
            if n.get("node") == node:
                return n
        return None

    def v1():
        st, data, _ = request(port, "GET", "/api/v1/connectivity_check")
        v = json.loads(data)
        return st, sorted(v.get("Absent") or []), sorted(v.get("Outdated") or [])

    # 1. forge a dead node's health
    monitor.phase = "1 forge"
    donor = {kind: n for n in by_node["node-01"] for kind in [cluster.pods[n][1]]}
    answers = []
    for v in victims:
        answers.append(request(port, "POST", f"/api/v1/agents/{v}", FORGED_BODY)[0])
        answers.append(request(port, "POST", f"/api/v1/agents/{v}", FORGED_BODY,
                               token=cluster.tokens[donor[cluster.pods[v][1]]])[0])
    time.sleep(0.5)
    _, absent, outdated = v1()
    vnode = v2_node(VICTIM_NODE)
    verdict = vnode and vnode.get("verdict")
    held = (all(400 <= a < 500 for a in answers) and set(absent + outdated) == set(victims)
            and verdict not in (None, "healthy"))
    res.add("1 forge a dead node's health (51-byte POST, no token / another pod's token)",
            "200, node healthy for ~63 years",
            f"{'/'.join(map(str, answers))}; v1 absent {absent} outdated {outdated}; v2 verdict {verdict}",
            held)

    # 2. memory: made-up names with ~250 KB of ips
    monitor.phase = "2 memory"
    before = monitor.rss_now()
    big = dict(agents.template)
    big["ips"] = {f"eth{i}": [f"10.{i // 250}.{i % 250}.{j}/24" for j in range(200)] for i in range(60)}
    big_json = json.dumps(big, separators=(",", ":"))
    while len(big_json) < 250_000:
        big["ips"][f"eth{len(big['ips'])}"] = [f"10.99.{len(big['ips']) % 250}.{j}/24" for j in range(200)]
        big_json = json.dumps(big, separators=(",", ":"))
    statuses = {}

    def post_big(i):
        name = f"netchecker-agent-fake{i:04d}"
        b = dict(big, podname=name, nodename=f"node-{i % NODES + 1:02d}")
        return request(port, "POST", f"/api/v1/agents/{name}",
                       json.dumps(b, separators=(",", ":")).encode(), timeout=15)[0]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for st in pool.map(post_big, range(400)):
            statuses[st] = statuses.get(st, 0) + 1
    # The same within the body cap: ips as large as their bounds allow.
    small = dict(agents.template)
    small["ips"] = {f"eth{i}": [f"10.{i}.{j // 250}.{j % 250}/24" for j in range(128)] for i in range(16)}
    small_len = len(json.dumps(small, separators=(",", ":")))
    small_st = {}

    def post_small(i):
        name = f"netchecker-agent-fake{i:04d}"
        b = dict(small, podname=name, nodename=f"node-{i % NODES + 1:02d}")
        return request(port, "POST", f"/api/v1/agents/{name}",
                       json.dumps(b, separators=(",", ":")).encode())[0]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for st in pool.map(post_small, range(400)):
            small_st[st] = small_st.get(st, 0) + 1
    time.sleep(0.5)
    after = monitor.rss_now()
    peak = monitor.peak.get("2 memory", after)
    held = all(s == 0 or 400 <= s < 500 for s in list(statuses) + list(small_st)) \
        and after - before < 16 * 1024 and peak < LIMIT_MIB * 1024
    res.add(f"2 memory: 400 made-up names x {len(big_json) // 1000} KB of ips, then x {small_len // 1000} KB",
            "108 MB RSS",
            f"{len(big_json) // 1000} KB: {statuses}, {small_len // 1000} KB: {small_st} (0 = closed unread); "
            f"RSS {mib(before)} -> {mib(after)}, peak {mib(peak)}", held)

    # 3. the agent list
    monitor.phase = "3 big list"
    st, data, secs = request(port, "GET", "/api/v1/agents/")
    stored = len(json.loads(data)) if st == 200 else -1
    peak = monitor.peak.get("3 big list", 0)
    res.add("3 big list: GET /api/v1/agents/", "97.6 MB answer, 540 MB peak RSS",
            f"{st}, {len(data) / 1000:.1f} KB for {stored} agents in {secs * 1000:.1f} ms; peak RSS {mib(max(peak, monitor.rss_now()))}",
            st == 200 and stored == len(cluster.pods) and peak < LIMIT_MIB * 1024)

    # 4. stalled readers
    monitor.phase = "4 stalled"
    before = monitor.rss_now()
    socks = []
    for path in ("/api/v1/agents/", "/api/v2/status") * 4:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        s.connect(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        socks.append((s, path, s.getsockname()[1], time.monotonic()))
    closed = {}
    queued = {}  # the most answer bytes the server had queued and unread
    end = time.monotonic() + 25
    while time.monotonic() < end and len(closed) < len(socks):
        states = tcp_states(port)
        for s, path, cport, t0 in socks:
            state, txq = states.get(cport, ("gone", 0))
            queued[cport] = max(queued.get(cport, 0), txq)
            # 01 = ESTABLISHED; anything else: the server closed its side.
            if cport not in closed and state != "01":
                closed[cport] = time.monotonic() - t0
        time.sleep(0.1)
    peak = monitor.peak.get("4 stalled", 0)
    after = monitor.rss_now()
    for s, *_ in socks:
        s.close()
    times = sorted(closed.values())
    stalled = sum(1 for q in queued.values() if q > 0)
    held = len(closed) == len(socks) and peak < LIMIT_MIB * 1024 and times[-1] < 20
    res.add("4 stalled readers: 4 x (agent list + v2 status), never read", "1.16 GB held for 20 s",
            f"{stalled}/{len(socks)} answers stalled in the send queue (up to {max(queued.values())} bytes); "
            f"{len(closed)}/{len(socks)} closed by the server after "
            f"{times[0]:.1f}-{times[-1]:.1f} s; RSS {mib(before)} -> peak {mib(peak)}"
            if times else f"0/{len(socks)} closed in 25 s; peak {mib(peak)}", held)

    # 5. metric series
    monitor.phase = "5 series"
    node19 = by_node["node-19"]
    attacker, second = node19[0], node19[1]  # pod agent and hostnet agent of node-19

    def probes(round_no, n):
        return [{"URL": f"http://svc-{round_no}-{k}.example/{'p' * 1200}", "ConnectionResult": 1,
                 "HTTPCode": 200, "Total": 3, "ContentTransfer": 0, "TCPConnection": 1,
                 "DNSLookup": 1, "Connect": 1, "ServerProcessing": 1} for k in range(n)]
    other_answers = {}
    for i in range(20):
        b = json.loads(agents.body(attacker, probes=probes(i, 16)))
        b["podname"] = second
        st = request(port, "POST", f"/api/v1/agents/{second}", json.dumps(b).encode(),
                     token=cluster.tokens[attacker])[0]
        other_answers[st] = other_answers.get(st, 0) + 1
    agents.paused.add(attacker)
    time.sleep(1.2)
    own, lat, lines_after = {}, [], []
    for i in range(20):
        st, _, secs = agents.post(attacker, probes=probes(i, 16))
        own[st] = own.get(st, 0) + 1
        lat.append(secs)
        lines_after.append(metrics_lines(port)[1])
    too_many = agents.post(attacker, probes=probes(99, 200))[0]
    size_of = len(agents.body(attacker, probes=probes(0, 16)))
    _, m_lines1, m_bytes1, m_secs = metrics_lines(port)
    agents.paused.discard(attacker)
    held = (all(400 <= s < 500 for s in other_answers) and own == {200: 20}
            and 400 <= too_many < 500 and max(lines_after) - min(lines_after) <= 16
            and m_lines1 < m_lines0 + 200 and max(lat) < 0.5)
    res.add(f"5 metric series: 20 reports of {size_of // 1000} KB, 16 new probe URLs each",
            "160,000 series, 13.7 MB /metrics, report 6 ms -> 1.2 s",
            f"other pod's name with own token: {other_answers}; own name: {own}, series "
            f"{min(lines_after)}-{max(lines_after)} during, {m_lines0} -> {m_lines1} ({m_bytes1 / 1000:.0f} KB, "
            f"scrape {m_secs * 1000:.0f} ms); 200 URLs: {too_many}; report max {max(lat) * 1000:.1f} ms",
            held)

    # 6. push real agents out
    monitor.phase = "6 push out"
    flood = {}
    n_flood = MAX_AGENTS + 200
    t = time.monotonic()

    def flood_part(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        out = {}
        body_t = json.loads(agents.body(attacker))
        for i in range(k, n_flood, 4):
            name = f"netchecker-agent-made{i:05d}"
            body_t["podname"] = name
            tok = cluster.tokens[attacker] if i % 2 else None
            h = {"Content-Type": "application/json"}
            if tok:
                h["Authorization"] = f"Bearer {tok}"
            try:
                conn.request("POST", f"/api/v1/agents/{name}", json.dumps(body_t).encode(), h)
                r = conn.getresponse()
                r.read()
                st = r.status
                if r.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            except (OSError, http.client.HTTPException):
                st = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            out[st] = out.get(st, 0) + 1
        conn.close()
        return out
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for part in pool.map(flood_part, range(4)):
            for st, c in part.items():
                flood[st] = flood.get(st, 0) + c
    flood_secs = time.monotonic() - t
    # A new real pod joins after the flood.
    newcomers = cluster.add_node(f"node-{NODES + 1:02d}")
    monitor.tolerated |= set(newcomers)
    new_st = {}
    end = time.monotonic() + 10
    for n in newcomers:
        while True:
            st = agents.post(n)[0]
            if st == 200 or time.monotonic() > end:
                break
            time.sleep(0.2)
        new_st[n] = st
    with agents.lock:
        agents.active |= set(newcomers)
    time.sleep(1.5)
    monitor.tolerated -= set(newcomers)
    st, data, _ = request(port, "GET", "/api/v1/agents/")
    stored = len(json.loads(data))
    bad_real = [b for b in agents.bad]
    held = (all(400 <= s < 500 for s in flood) and all(s == 200 for s in new_st.values())
            and stored == len(cluster.pods) and not bad_real)
    res.add(f"6 push real agents out: {n_flood} made-up names (half with a real pod's token)",
            "a real new pod got 507",
            f"{flood} in {flood_secs:.1f} s; new real pods {sorted(set(new_st.values()))}; "
            f"{stored} agents stored (= {len(cluster.pods)} pods); real reports refused: {len(bad_real)}",
            held)

    # 8. log forging (on the chart's server; 7 runs a server of its own)
    monitor.phase = "8 log"
    forged = "FORGED-LINE INFO netchecker_server: admin token accepted"
    path = "/api/v1/agents/x%0a" + urllib.parse.quote(forged) + "%0d%0a" + urllib.parse.quote(forged)
    fst = request(port, "POST", path, agents.body(attacker))[0]
    log_start = os.path.getsize(server_log)
    t = time.monotonic()
    refusals = 0
    while time.monotonic() - t < 3.0:
        request(port, "POST", "/api/v1/agents/netchecker-agent-nope", b"{}")
        refusals += 1
    time.sleep(0.3)
    with open(server_log, errors="replace") as f:
        f.seek(log_start)
        burst_lines = len(f.read().splitlines())
    with open(server_log, errors="replace") as f:
        forged_lines = [l for l in f if l.startswith("FORGED")]
    held = not forged_lines and 400 <= fst < 500 and burst_lines <= 3 * 10 + 5
    res.add("8 log forging: %0a/%0d%0a in an agent name; 3 s of refusals",
            "a forged line in the log; a line per refusal and per 5xx",
            f"{fst}; {len(forged_lines)} forged lines; {refusals} refusals in 3 s -> {burst_lines} log lines",
            held)

    # 9. credentials in probe URLs
    monitor.phase = "9 credentials"
    cred_url = "http://user:s3cret@host.example/ping?token=abc123#frag"
    agents.paused.add(attacker)
    time.sleep(1.2)
    cst = agents.post(attacker, probes=[dict(probes(0, 1)[0], URL=cred_url)])[0]
    leaks = []
    seen_host = False
    for route in ("/api/v1/agents/", f"/api/v1/agents/{attacker}", "/api/v2/status", "/metrics"):
        st, data, _ = request(port, "GET", route)
        text = data.decode("utf-8", "replace")
        seen_host |= "host.example" in text
        leaks += [f"{route}:{s}" for s in ("s3cret", "abc123") if s in text]
    agents.paused.discard(attacker)

    # 7. DELETE and the read token: a static server of its own
    monitor.phase = "7 delete"
    port2 = free_port()
    token_file = os.path.join(tmp, "read-token")
    with open(token_file, "w") as f:
        f.write("read-secret-7f3a\n")
    log2 = os.path.join(tmp, "server2.log")
    env2 = {k: v for k, v in os.environ.items() if not k.startswith("NETCHECKER_")}
    env2["RUST_LOG"] = server_env("")["RUST_LOG"]
    with open(log2, "w") as l2:
        srv2 = procs.start([os.path.join(args.bin_dir, "netchecker-server"),
                            f"--endpoint=127.0.0.1:{port2}", "--kube=false", "--report-auth=off",
                            f"--read-token-file={token_file}",
                            "--expected-agents=agent-x,agent-y"], env=env2, stdout=l2,
                           stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: request(port2, "GET", "/readyz", timeout=1)[0] == 200 or srv2.poll() is not None,
                 10, "the second server")
        rt = "read-secret-7f3a"
        b = json.loads(agents.body(attacker))
        for n in ("agent-x", "agent-z"):
            b.update(podname=n, nodename="node-a", network_probes=[dict(probes(0, 1)[0], URL=cred_url)])
            request(port2, "POST", f"/api/v1/agents/{n}", json.dumps(b).encode())
        d_anon = request(port2, "DELETE", "/api/v1/agents/agent-z")[0]
        d_exp = request(port2, "DELETE", "/api/v1/agents/agent-x", token=rt)[0]
        d_ok = request(port2, "DELETE", "/api/v1/agents/agent-z", token=rt)[0]
        st, data, _ = request(port2, "GET", "/api/v1/connectivity_check")
        agents2 = json.loads(request(port2, "GET", "/api/v1/agents/", token=rt)[1])
        reads_anon = [request(port2, "GET", r)[0] for r in ("/api/v1/agents/", "/api/v2/status", "/metrics")]
        for route in ("/api/v1/agents/", "/api/v2/status", "/metrics"):
            text = request(port2, "GET", route, token=rt)[1].decode("utf-8", "replace")
            leaks += [f"2{route}:{s}" for s in ("s3cret", "abc123", rt) if s in text]
    finally:
        procs.stop(srv2)
    with open(log2, errors="replace") as f:
        text = f.read()
        leaks += [f"server2 log:{s}" for s in ("s3cret", "abc123", "read-secret-7f3a") if s in text]
    held = (d_anon == 401 and d_exp == 409 and 200 <= d_ok < 300 and "agent-x" in agents2
            and all(s == 401 for s in reads_anon))
    res.add("7 DELETE without the read token; DELETE an --expected-agents name",
            "any agent deleted, expected ones too",
            f"no token: {d_anon}; expected name with token: {d_exp} (still listed: {'agent-x' in agents2}); "
            f"other name with token: {d_ok}; reads without token: {reads_anon}", held)

    # the chart server's log, for 9
    with open(server_log, errors="replace") as f:
        text = f.read()
        leaks += [f"server log:{s}" for s in ("s3cret", "abc123") if s in text]
    res.add("9 credentials in a probe URL (user:s3cret@, ?token=abc123)",
            "stored and shown as sent",
            f"report {cst}; stored URL seen: {seen_host}; leaks: {leaks or 'none'} "
            "(agent list, v2 status, /metrics, server logs; read token required on server 2)",
            cst == 200 and seen_host and not leaks)

    # Throughout
    monitor.phase = "end"
    time.sleep(1.0)
    monitor.stop.set()
    monitor.thread.join(5)
    peak_all = max(monitor.samples) if monitor.samples else 0
    _, m_lines2, m_bytes2, _ = metrics_lines(port)
    lat = sorted(agents.latencies)
    p50 = lat[len(lat) // 2] * 1000
    p99 = lat[int(len(lat) * 0.99)] * 1000
    bad_real = list(agents.bad)
    res.add("throughout: v1 check names exactly the victim's 2 agents",
            "(victim made healthy by attack 1)",
            f"{monitor.checks} checks, {len(monitor.wrong)} wrong"
            + (f", first {monitor.wrong[0]}" if monitor.wrong else ""), not monitor.wrong)
    res.add("throughout: real agents' reports",
            "(a real new pod got 507)",
            f"{agents.sent} sent, {len(bad_real)} refused; latency median {p50:.1f} ms, p99 {p99:.1f} ms, "
            f"max {lat[-1] * 1000:.1f} ms" + (f"; first refused {bad_real[0]}" if bad_real else ""),
            not bad_real)
    res.add(f"throughout: server RSS vs the chart's limit ({LIMIT_MIB} MiB for maxAgents {MAX_AGENTS})",
            "540 MB peak (1.16 GB with stalled readers)",
            f"idle {mib(idle_rss)}, peak {mib(peak_all)} ({100 * peak_all / (LIMIT_MIB * 1024):.0f}% of the limit), "
            f"end {mib(monitor.rss_now())}; /metrics {m_lines0} -> {m_lines2} series ({m_bytes2 / 1000:.0f} KB)",
            peak_all < LIMIT_MIB * 1024)
    for phase, kib in monitor.peak.items():
        log(f"peak RSS during {phase}: {mib(kib)}")
    ok = res.table()
    print(f"\nattacks: {'all held' if ok else 'SOME DID NOT HOLD'} in {time.monotonic() - t_start:.0f} s")
    return ok


if __name__ == "__main__":
    main()
