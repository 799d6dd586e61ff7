#!/usr/bin/env bash
# Agent footprint: resident memory and CPU time per report.
#
# Runs the release agent against a server on loopback with the padding of
# the original (1500 zeros), two extra probe URLs and a 1 s interval, until
# the server has received REPORTS reports (30 by default). The server host
# is given as `localhost`, so each round really goes through getaddrinfo
# (/etc/hosts) as in a cluster. Measured:
#   - peak resident set: VmHWM from /proc/PID/status (not ru_maxrss, which
#     counts the forked Python before exec);
#   - CPU per report, steady state: the sum of on-CPU nanoseconds of the
#     agent's threads (/proc/PID/task/*/schedstat) between the first and the
#     last report, divided by the reports in between; likewise the time
#     slices (the third schedstat field: one per wake-up of a thread);
#   - CPU per report, everything: utime+stime from wait4() after SIGTERM
#     (microsecond resolution, start-up and exit included) divided by all
#     reports.
#
# The server is a tiny Python http.server that answers 200 to every GET and
# POST and counts the reports, so the numbers are the agent's alone. With
# BENCH_SERVER=real the release netchecker-server (--kube=false) is used
# instead; reports are then counted by polling GET /api/v1/agents/{pod}.
#
# Identical runs on a shared virtual machine differ a lot in CPU time (we
# have seen 1 to 13 ms per report for the same binary): such a machine
# charges a process heavily for waking up from idle once a second, whatever
# the process does. So the agent is measured RUNS times (3 by default), each
# a fresh process, every run printed with the load average, then
# min/median/max; then, to separate the agent's own work from that charge,
#   - 300 rounds run back to back in one process (examples/round_cost.rs),
#   - the CPU a bare `sleep(1)` loop is charged per wake-up.
#
# Usage: hack/agent-footprint.sh
#   env: REPORTS (30), RUNS (3), PADDING (1500), BENCH_SERVER=stub|real,
#        AGENT_BIN (measure another agent binary)
# Only loopback traffic; every process started here is stopped on exit.
set -euo pipefail
# shellcheck source=hack/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"

say "building the release agent"
cargo build --release --quiet -p netchecker-agent
cargo build --release --quiet -p netchecker-agent --example round_cost
if [ "${BENCH_SERVER:-stub}" = real ]; then
    say "building the release server"
    cargo build --release --quiet -p netchecker-server
fi

exec python3 - "$TARGET_DIR/release" <<'PY'
import glob, json, os, signal, socket, statistics, subprocess, sys, tempfile, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

release = sys.argv[1]
reports_wanted = int(os.environ.get("REPORTS", "30"))
runs = int(os.environ.get("RUNS", "3"))
padding = int(os.environ.get("PADDING", "1500"))
server_kind = os.environ.get("BENCH_SERVER", "stub")
agent_bin = os.environ.get("AGENT_BIN") or f"{release}/netchecker-agent"
children = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop_children():
    for p in children:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def loadavg():
    return open("/proc/loadavg").read().split()[0]


port = free_port()
seen = {}  # pod -> distinct hostdates (one per report)
lock = threading.Lock()

if server_kind == "real":
    server = subprocess.Popen(
        [f"{release}/netchecker-server", "--kube=false", "--endpoint", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children.append(server)

    def count(pod):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/agents/{pod}", timeout=1) as r:
                seen.setdefault(pod, set()).add(json.load(r)["hostdate"])
        except Exception:
            pass
        return len(seen.get(pod, ()))
else:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if self.command == "POST" and self.path.startswith("/api/v1/agents/"):
                report = json.loads(body)
                with lock:
                    seen.setdefault(report["podname"], set()).add(report["hostdate"])

        do_GET = _answer
        do_POST = _answer

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def count(pod):
        with lock:
            return len(seen.get(pod, ()))

# Wait until the server listens.
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        break
    except OSError:
        time.sleep(0.1)


def measure(run):
    """One agent process until `reports_wanted` reports; its figures."""
    pod = f"netchecker-agent-bench-{run}"
    env = dict(os.environ, MY_POD_NAME=pod, MY_NODE_NAME="bench-node")
    env.pop("RUST_LOG", None)
    log = tempfile.TemporaryFile()
    agent = subprocess.Popen(
        [agent_bin,
         f"-serverendpoint=localhost:{port}", "-reportinterval=1", f"-zeroextenderlength={padding}",
         f"-probeurls=http://localhost:{port}/api/v1/ping?a;http://localhost:{port}/api/v1/ping?b"],
        env=env, stdout=subprocess.DEVNULL, stderr=log)
    children.append(agent)

    def on_cpu_ns():
        """On-CPU nanoseconds and time slices (one per wake-up) of all threads."""
        total, slices = 0, 0
        for f in glob.glob(f"/proc/{agent.pid}/task/*/schedstat"):
            try:
                fields = open(f).read().split()
                total += int(fields[0])
                slices += int(fields[2])
            except OSError:
                pass
        return total, slices

    def status(field):
        for line in open(f"/proc/{agent.pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])

    def wait_for(n, limit):
        deadline = time.monotonic() + limit
        while count(pod) < n:
            if time.monotonic() > deadline or agent.poll() is not None:
                stop_children()
                log.seek(0)
                sys.exit(f"only {count(pod)} of {n} reports; agent log:\n"
                         f"{log.read().decode(errors='replace')}")
            time.sleep(0.02)

    load_before = loadavg()
    wait_for(1, 20)
    (first_ns, first_slices), first_n = on_cpu_ns(), count(pod)
    wait_for(reports_wanted, reports_wanted + 30)
    (last_ns, last_slices), last_n = on_cpu_ns(), count(pod)
    hwm_kb, rss_kb, threads = status("VmHWM"), status("VmRSS"), status("Threads")
    agent.send_signal(signal.SIGTERM)
    _, wstatus, ru = os.wait4(agent.pid, 0)
    agent.returncode = os.waitstatus_to_exitcode(wstatus)
    return {
        "reports": last_n,
        "steady_ms": (last_ns - first_ns) / 1e6 / max(1, last_n - first_n),
        "wakeups": (last_slices - first_slices) / max(1, last_n - first_n),
        "all_ms": (ru.ru_utime + ru.ru_stime) * 1000 / last_n,
        "user_ms": ru.ru_utime * 1000,
        "sys_ms": ru.ru_stime * 1000,
        "hwm_mib": hwm_kb / 1024,
        "rss_mib": rss_kb / 1024,
        "threads": threads,
        "exit": agent.returncode,
        "load": f"{load_before} -> {loadavg()}",
    }


def back_to_back():
    """The agent's own work: rounds run back to back (crates/agent/examples/round_cost.rs)."""
    out = subprocess.run(
        [f"{release}/examples/round_cost", "--rounds", "300", "--",
         f"-serverendpoint=localhost:{port}", "-reportinterval=60", f"-zeroextenderlength={padding}",
         f"-probeurls=http://localhost:{port}/api/v1/ping?a;http://localhost:{port}/api/v1/ping?b"],
        env=dict(os.environ, MY_POD_NAME="netchecker-agent-bench-b2b"),
        capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit(f"round_cost failed: {out.stderr}")
    return out.stdout.strip()


def wakeup_baseline():
    """CPU a process is charged for nothing but waking once a second."""
    out = subprocess.run(
        [sys.executable, "-c",
         "import resource, time\n"
         "cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])\n"
         "c0 = cpu()\n"
         "for _ in range(10): time.sleep(1)\n"
         "print(f'{(cpu() - c0) * 100:.2f}')"],
        capture_output=True, text=True, timeout=60)
    return float(out.stdout)


try:
    results = [measure(i + 1) for i in range(runs)]
    b2b = back_to_back()
    idle_ms = wakeup_baseline()
finally:
    stop_children()

print(f"server: {server_kind} on 127.0.0.1 (host given as localhost); agent: {agent_bin}")
print(f"each run: one agent process, {reports_wanted} reports, interval 1 s, padding {padding}, "
      f"ping + 2 probe URLs")
print(f"binary size: {os.path.getsize(agent_bin) / 1048576:.1f} MiB; machine: {os.cpu_count()} CPUs")
print()
print("run  reports  peak RSS  RSS end  threads  CPU/report steady  wake-ups/report  CPU/report all (user+sys)  exit  load avg")
for i, r in enumerate(results, 1):
    print(f"{i:>3}  {r['reports']:>7}  {r['hwm_mib']:>5.1f} MiB  {r['rss_mib']:>3.1f} MiB  {r['threads']:>7}"
          f"  {r['steady_ms']:>14.2f} ms  {r['wakeups']:>15.1f}"
          f"  {r['all_ms']:>8.2f} ms ({r['user_ms']:.0f}+{r['sys_ms']:.0f} ms)"
          f"  {r['exit']:>9}  {r['load']}")
steady = sorted(r["steady_ms"] for r in results)
print()
print(f"peak RSS, highest of {runs} runs:      {max(r['hwm_mib'] for r in results):.1f} MiB")
print(f"CPU per report, steady, over runs: min {steady[0]:.2f} ms, "
      f"median {statistics.median(steady):.2f} ms, max {steady[-1]:.2f} ms")
print()
print("The agent's own work per report, without the idle wake-up (same server, same flags):")
print(b2b)
print(f"Baseline: a process that only sleeps 1 s in a loop is charged {idle_ms:.2f} ms CPU per wake-up "
      f"on this machine right now.")
PY
