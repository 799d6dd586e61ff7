#!/usr/bin/env bash
# Checks that every metric name the Grafana dashboard and the alert rules use
# is exposed by the real server: builds netchecker-server, starts it without
# Kubernetes on 127.0.0.1, posts the Go agent fixture reports (and one bad
# report, so that the rejection counter has a series), lets two made-up
# nodes' agents take one mesh round (peers handed out, results reported, so
# that the mesh's probe series exist), scrapes /metrics and compares. Also
# runs `promtool check metrics` on the scrape.
#
# Variables: NETCHECKER_SERVER_BIN (skip the build and use this binary).
set -euo pipefail
# shellcheck source=hack/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
use_tools
PY="$ROOT/.tools/venv/bin/python"
DASHBOARD="$ROOT/helm-chart/files/grafana-dashboard.json"
RULES="$ROOT/helm-chart/files/prometheus-rules.yaml"
FIXTURES="$ROOT/crates/wire/tests/fixtures"

work="$(mktemp -d)"
at_exit rm -rf "$work"

bin="${NETCHECKER_SERVER_BIN:-}"
if [[ -z "$bin" ]]; then
  say "cargo build -p netchecker-server"
  (cd "$ROOT" && cargo build --quiet -p netchecker-server) || die "cargo build -p netchecker-server failed"
  bin="$TARGET_DIR/debug/netchecker-server"
fi
[[ -x "$bin" ]] || die "no server binary at $bin"

shopt -s nullglob
fixtures=("$FIXTURES"/*.json)
((${#fixtures[@]})) || die "no fixture reports in $FIXTURES"

port="$(free_port)"
base="http://127.0.0.1:$port"
# An expected agent that never reports gives the absent state a non-zero
# count; a short check interval and no start-up grace fill every state gauge;
# one-second mesh rounds hand out peers at once.
start_and_wait_ready "$work/server.log" "$base/api/v1/ping" "$bin" --kube=false --endpoint "127.0.0.1:$port" \
  --expected-agents netchecker-agent-never --check-interval 1 --startup-grace 0 --mesh-round 1
say "server $bin up on $base (pid $BG_PID)"

for f in "${fixtures[@]}"; do
  pod="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["podname"])' "$f")"
  code="$(curl -sS -o "$work/post.out" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$f" "$base/api/v1/agents/$pod")"
  [[ "$code" == 200 ]] || { cat "$work/post.out" >&2; die "POST $(basename "$f") as $pod answered $code"; }
  say "posted $(basename "$f") as $pod"
done
code="$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary '{"report_interval": ' "$base/api/v1/agents/netchecker-agent-broken")"
[[ "$code" == 4* ]] || die "a malformed report was answered $code, expected 4xx"

# One mesh round between the pod-network agents of two made-up nodes, as
# agents with --mesh-port do it (doc/agent.md, "The node-to-node mesh"):
# report with the mesh header and an address until the server hands out the
# peer, then report the probe of it, mesh-a's ok, mesh-b's failed.
"$PY" - "$base" "${fixtures[0]}" <<'PY' || die "no mesh round with the server (log: $work/server.log)"
import json, sys, time, urllib.request

base, fixture = sys.argv[1], sys.argv[2]
template = json.load(open(fixture))
nodes = {"mesh-a": "127.0.0.11", "mesh-b": "127.0.0.12"}


def report(node, round_, results):
    r = dict(template, podname=f"netchecker-agent-{node}", nodename=node)
    r["mesh"] = {"port": 8090, "addresses": [nodes[node]], "round": round_, "results": results}
    req = urllib.request.Request(f"{base}/api/v1/agents/{r['podname']}", data=json.dumps(r).encode(),
                                 headers={"Content-Type": "application/json", "netchecker-mesh": "1"})
    with urllib.request.urlopen(req, timeout=5) as a:
        body = a.read()
    return json.loads(body)["mesh"] if body else {"round": 0, "peers": []}


handed = {}
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    handed = {n: report(n, 0, []) for n in nodes}
    if all(h["peers"] for h in handed.values()):
        break
    time.sleep(0.3)
else:
    sys.exit(f"check-dashboard-metrics: the server handed out no mesh peers: {handed}")
for n, h in handed.items():
    failed = n == "mesh-b"
    results = [{"node": p["node"], "address": p["address"],
                "outcome": "connect_failed" if failed else "ok",
                "connect_us": 0 if failed else 150, "transfer_us": 0 if failed else 350,
                "total_us": 2000000 if failed else 500, "padding": 1500,
                "error": "connection refused" if failed else ""} for p in h["peers"]]
    report(n, h["round"], results)
print(f"check-dashboard-metrics: mesh round between {', '.join(nodes)} reported", file=sys.stderr)
PY

# Poll until every used name is there (the background check loop fills the
# state gauges within a check interval), at most ~15 s.
ok=0
for _ in $(seq 1 30); do
  curl -fsS "$base/metrics" >"$work/metrics.txt" || die "GET /metrics failed"
  if "$PY" "$ROOT/hack/metric-names.py" check "$DASHBOARD" "$RULES" "$work/metrics.txt" >/dev/null 2>&1; then
    ok=1
    break
  fi
  sleep 0.5
done
"$PY" "$ROOT/hack/metric-names.py" check "$DASHBOARD" "$RULES" "$work/metrics.txt" \
  || { ((ok)) || die "metric names used by the dashboard or the rules are not exposed (scrape above)"; }

# promtool's lint. The original's gauges are in milliseconds with "_ms"
# names, which the lint flags as an abbreviated unit; they stay for
# compatibility (doc/alerts.md), every other finding fails.
set +e
promtool check metrics <"$work/metrics.txt" >"$work/lint.txt" 2>&1
lint_rc=$?
set -e
grep -vE '^ncagent_http_probe_[a-z_]+_ms metric names should not contain abbreviated units$' "$work/lint.txt" \
  | grep -v '^$' >"$work/lint-other.txt" || true
if [[ -s "$work/lint-other.txt" ]]; then
  cat "$work/lint-other.txt" >&2
  die "promtool check metrics found problems in the scrape"
fi
if ((lint_rc != 0)) && [[ ! -s "$work/lint.txt" ]]; then
  die "promtool check metrics failed (exit $lint_rc) without a finding"
fi
say "promtool check metrics: clean$( [[ -s "$work/lint.txt" ]] && echo " apart from $(wc -l <"$work/lint.txt") accepted finding(s) on the original's _ms gauges")"
say "OK"
