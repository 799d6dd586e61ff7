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
#     last report, divided by the reports in between;
#   - CPU per report, everything: utime+stime from wait4() after SIGTERM
#     (microsecond resolution, start-up and exit included) divided by all
#     reports.
#
# The server is a tiny Python http.server that answers 200 to every GET and
# POST and counts the reports, so the numbers are the agent's alone. With
# BENCH_SERVER=real the release netchecker-server (--kube=false) is used
# instead; reports are then counted by polling GET /api/v1/agents/{pod}.
#
# CPU time per report depends on what else runs on the machine (shared
# caches, hypervisor): the 1-minute load average is printed with the result.
#
# Usage: crates/agent/benches/agent_footprint.sh   [env: REPORTS, PADDING, BENCH_SERVER]
# Only loopback traffic; every process started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"

echo "building the release agent..." >&2
cargo build --release --quiet -p netchecker-agent
if [ "${BENCH_SERVER:-stub}" = real ]; then
    echo "building the release server..." >&2
    cargo build --release --quiet -p netchecker-server
fi

exec python3 - "$ROOT" <<'PY'
import glob, json, os, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

root = sys.argv[1]
reports_wanted = int(os.environ.get("REPORTS", "30"))
padding = int(os.environ.get("PADDING", "1500"))
server_kind = os.environ.get("BENCH_SERVER", "stub")
pod = "netchecker-agent-bench"
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


port = free_port()
seen = set()  # distinct hostdates = distinct reports
lock = threading.Lock()

if server_kind == "real":
    server = subprocess.Popen(
        [f"{root}/target/release/netchecker-server", "--kube=false", "--endpoint", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children.append(server)

    def count():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/agents/{pod}", timeout=1) as r:
                seen.add(json.load(r)["hostdate"])
        except Exception:
            pass
        return len(seen)
else:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if self.command == "POST" and self.path.startswith("/api/v1/agents/"):
                with lock:
                    seen.add(json.loads(body)["hostdate"])

        do_GET = _answer
        do_POST = _answer

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def count():
        with lock:
            return len(seen)

# Wait until the server listens.
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        break
    except OSError:
        time.sleep(0.1)

env = dict(os.environ, MY_POD_NAME=pod, MY_NODE_NAME="bench-node")
env.pop("RUST_LOG", None)
log = tempfile.TemporaryFile()
agent = subprocess.Popen(
    [f"{root}/target/release/netchecker-agent",
     f"-serverendpoint=localhost:{port}", "-reportinterval=1", f"-zeroextenderlength={padding}",
     f"-probeurls=http://localhost:{port}/api/v1/ping?a;http://localhost:{port}/api/v1/ping?b"],
    env=env, stdout=subprocess.DEVNULL, stderr=log)
children.append(agent)


def on_cpu_ns():
    total = 0
    for f in glob.glob(f"/proc/{agent.pid}/task/*/schedstat"):
        try:
            total += int(open(f).read().split()[0])
        except OSError:
            pass
    return total


def status(field):
    for line in open(f"/proc/{agent.pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])


def wait_for(n, limit):
    deadline = time.monotonic() + limit
    while count() < n:
        if time.monotonic() > deadline or agent.poll() is not None:
            stop_children()
            log.seek(0)
            sys.exit(f"only {count()} of {n} reports; agent log:\n{log.read().decode(errors='replace')}")
        time.sleep(0.02)


load_before = open("/proc/loadavg").read().split()[0]
try:
    wait_for(1, 20)
    first_ns, first_n = on_cpu_ns(), count()
    wait_for(reports_wanted, reports_wanted + 30)
    last_ns, last_n = on_cpu_ns(), count()
    hwm_kb, rss_kb, threads = status("VmHWM"), status("VmRSS"), status("Threads")
    agent.send_signal(signal.SIGTERM)
    _, wstatus, ru = os.wait4(agent.pid, 0)
    agent.returncode = os.waitstatus_to_exitcode(wstatus)
finally:
    stop_children()

load_after = open("/proc/loadavg").read().split()[0]
steady = (last_ns - first_ns) / 1e6 / max(1, last_n - first_n)
total_cpu_ms = (ru.ru_utime + ru.ru_stime) * 1000
size = os.path.getsize(f"{root}/target/release/netchecker-agent")
print(f"server:                      {server_kind} on 127.0.0.1 (host given as localhost)")
print(f"reports:                     {last_n} (interval 1 s, padding {padding}, ping + 2 probe URLs)")
print(f"peak RSS (VmHWM):            {hwm_kb / 1024:.1f} MiB")
print(f"RSS at the end (VmRSS):      {rss_kb / 1024:.1f} MiB")
print(f"threads at the end:          {threads}")
print(f"binary size:                 {size / 1048576:.1f} MiB")
print(f"CPU per report, steady:      {steady:.2f} ms ({last_n - first_n} reports after the first)")
print(f"CPU per report, everything:  {total_cpu_ms / last_n:.2f} ms "
      f"(user {ru.ru_utime * 1000:.0f} ms + sys {ru.ru_stime * 1000:.0f} ms over {last_n} reports)")
print(f"exit status after SIGTERM:   {agent.returncode}")
print(f"load average (1 min):        {load_before} at start, {load_after} at end, on {os.cpu_count()} CPUs "
      f"(other work on the machine inflates CPU time)")
PY
