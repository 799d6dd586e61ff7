#!/usr/bin/env bash
# The local demo (`make demo`): build both binaries, run the server without
# Kubernetes on 127.0.0.1 and two agents against it (one named like a
# pod-network agent, one like a host-network agent), show the connectivity
# check and the reports, then stop one agent and show it reported Outdated.
# Everything runs on loopback and is stopped on exit, also on failure.
#
# Variables: DEMO_PORT (default: a free port), DEMO_INTERVAL (seconds, default 2)
set -euo pipefail
# shellcheck source=hack/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"

INTERVAL=${DEMO_INTERVAL:-2}
PORT=${DEMO_PORT:-$(free_port)}
SERVER="127.0.0.1:$PORT"
POD_AGENT=netchecker-agent-demo
HOST_AGENT=netchecker-agent-hostnet-demo
NODE=$(hostname)
LOGS=$(mktemp -d)
at_exit rm -rf "$LOGS"
show_logs() { ((EXIT_RC == 0)) || { say "failed (exit $EXIT_RC); logs:"; tail -n 20 "$LOGS"/*.log >&2; }; }
at_exit show_logs

check() { curl -s -o "$LOGS/check.json" -w '%{http_code}' "http://$SERVER/api/v1/connectivity_check"; }

say "building netchecker-server and netchecker-agent"
cargo build --quiet -p netchecker-server -p netchecker-agent --bins
BIN=$TARGET_DIR/debug

say "starting the server without Kubernetes on $SERVER"
start_and_wait_ready "$LOGS/server.log" "http://$SERVER/healthz" \
  "$BIN/netchecker-server" --kube=false --endpoint "$SERVER" --check-interval 1 --startup-grace 0

say "starting two agents every ${INTERVAL}s: $POD_AGENT (kebab-case flags) and $HOST_AGENT (the original's Go flags)"
start_bg "$LOGS/agent.log" env MY_POD_NAME="$POD_AGENT" MY_NODE_NAME="$NODE" "$BIN/netchecker-agent" \
  --serverendpoint "$SERVER" --reportinterval "$INTERVAL" --probeurls "http://$SERVER/healthz"
start_bg "$LOGS/agent-hostnet.log" env MY_POD_NAME="$HOST_AGENT" MY_NODE_NAME="$NODE" "$BIN/netchecker-agent" \
  -v=5 -alsologtostderr=true -serverendpoint="$SERVER" -reportinterval="$INTERVAL"
HOST_AGENT_PID=$BG_PID

say "waiting for both agents to report"
for _ in $(seq 100); do [[ $(check) == 200 ]] && grep -q hostnet "$LOGS/check.json" 2>/dev/null && break; sleep 0.2; done
code=$(check)
[[ $code == 200 ]] || die "check did not become healthy: $code $(cat "$LOGS/check.json")"

say "GET /api/v1/connectivity_check -> HTTP $code"
jq . "$LOGS/check.json"

say "GET /api/v1/agents/ (the reports, summarised)"
curl -sf "http://$SERVER/api/v1/agents/" | jq -r 'to_entries[] | .value as $r |
  "\(.key)\n  node \($r.nodename), every \($r.report_interval)s, last report \($r.last_updated), host up \($r.uptime)s",
  "  interfaces: \($r.ips | to_entries | map("\(.key)=\(.value | join(","))") | join("  "))",
  "  nslookup:   \($r.nslookup | to_entries | map("\(.key) -> \(.value | join(","))") | join("  "))",
  ($r.network_probes[] | "  probe \(.URL): connected=\(.ConnectionResult) HTTP \(.HTTPCode) total \(.Total) ms (dns \(.DNSLookup), tcp \(.TCPConnection), first byte \(.ServerProcessing))")'

say "stopping $HOST_AGENT (as if its node's host network broke) and waiting two report windows"
stop_pid "$HOST_AGENT_PID"
sleep $((2 * INTERVAL + 2))
say "GET /api/v2/status (per-node diagnosis; the status page at / shows the same)"
curl -sf "http://$SERVER/api/v2/status" >"$LOGS/status.json"
jq -r '.nodes[] | "node \(.node): \(.verdict)\n  \(.reason)",
  (.agents[] | "  \(.name) (\(.kind)): \(.state), last report \(.last_report_age_seconds) s ago")' "$LOGS/status.json"
jq -e --arg n "$NODE" '.nodes == [.nodes[] | select(.node == $n and .verdict == "host_network_down")]' \
  "$LOGS/status.json" >/dev/null || die "expected node $NODE to be host_network_down"
code=$(check)
say "GET /api/v1/connectivity_check -> HTTP $code"
jq . "$LOGS/check.json"
if [[ $code != 400 ]] ||
  ! jq -e --arg a "$HOST_AGENT" '.Outdated == [$a] and .Absent == []' "$LOGS/check.json" >/dev/null; then
  die "expected $HOST_AGENT to be reported Outdated"
fi

say "metrics the server exposes for Prometheus (excerpt)"
curl -sf "http://$SERVER/metrics" | grep -E '^(netchecker_agents|netchecker_check_ok|ncagent_report_count_total|ncagent_error_count_total)' || true

say "done: $HOST_AGENT is Outdated, $POD_AGENT keeps reporting; stopping everything"
