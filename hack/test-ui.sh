#!/usr/bin/env bash
# The status page test (`make test-ui`): the page served at GET / by a real
# netchecker-server, rendered in headless Chromium (Debian's package, driven
# by playwright-core from tests/ui/; no browser is ever downloaded).
#
# Starts the server without Kubernetes on a free 127.0.0.1 port, checking who
# sends reports against a shared secret (--report-auth warn
# --report-token-file), with a node-to-node mesh of 2 peers and 1 s rounds,
# stages a failing cluster by POSTing reports with curl (most with the
# secret, one without, one with a wrong one), then stages failing mesh pairs
# with tests/ui/stage-mesh.mjs (agents that ask for peers and report their
# probes), and a second server with --read-token-file and the mesh off on
# another port. Then runs tests/ui/status-page.test.mjs, which checks the grid
# and the mesh section against /api/v2/status, takes screenshots of the failing
# cluster, stops the first server to see the error banner, and then has the
# second server's page ask for its read token. The second server is stopped by
# its PID at the end. Everything started here is stopped on exit, also on
# failure.
#
# Installs what is missing: chromium with apt (needs root), playwright-core
# with `npm ci` into tests/ui/node_modules (git-ignored).
# Variables: UI_TEST_PORT (default: a free port); UPDATE_SCREENSHOT=1 writes the
# screenshots to doc/status-page.png and doc/status-page-mesh.png (the ones the
# docs show) instead of target/ui-test/, so that a test run leaves the tree clean.
set -euo pipefail
# shellcheck source=hack/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"

CHROMIUM=/usr/bin/chromium
if [[ ${UPDATE_SCREENSHOT:-0} == 1 ]]; then
  SCREENSHOT=$ROOT/doc/status-page.png
  SCREENSHOT_MESH=$ROOT/doc/status-page-mesh.png
else
  SCREENSHOT=$ROOT/target/ui-test/status-page.png
  SCREENSHOT_MESH=$ROOT/target/ui-test/status-page-mesh.png
  mkdir -p "$(dirname "$SCREENSHOT")"
fi

# --- tools --------------------------------------------------------------------
if [[ -x $CHROMIUM ]]; then
  say "chromium: present"
else
  say "chromium: apt-get install -y chromium"
  apt_install chromium
  [[ -x $CHROMIUM ]] || die "$CHROMIUM still missing after installing chromium"
fi
command -v jq >/dev/null || { say "jq: apt-get install -y jq"; apt_install jq; }
for tool in node npm jq; do
  command -v "$tool" >/dev/null || die "$tool is needed (Debian: apt-get install -y nodejs npm jq)"
done
want=$(sed -n 's/.*"playwright-core": "\(.*\)".*/\1/p' tests/ui/package.json)
have=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' tests/ui/node_modules/playwright-core/package.json 2>/dev/null || true)
if [[ -n $want && $have == "$want" ]]; then
  say "playwright-core: present ($have)"
else
  say "playwright-core: npm ci in tests/ui (playwright-core $want, no browser download)"
  (cd tests/ui && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent) || die "npm ci in tests/ui failed"
fi

say "building netchecker-server"
cargo build --quiet -p netchecker-server --bin netchecker-server
BIN=$TARGET_DIR/debug/netchecker-server

# --- the server ------------------------------------------------------------------
SERVER="127.0.0.1:${UI_TEST_PORT:-$(free_port)}"
LOGS=$(mktemp -d)
at_exit rm -rf "$LOGS"
show_log() {
  ((EXIT_RC == 0)) && return
  say "failed (exit $EXIT_RC); server log:"
  tail -n 30 "$LOGS/server.log" >&2
  if [[ -f $LOGS/locked.log ]]; then
    say "log of the server with --read-token-file:"
    tail -n 30 "$LOGS/locked.log" >&2
  fi
}
at_exit show_log

# Secrets for this run only: what agents send as their bearer token
# (--report-token-file), and what readers of the status must send
# (--read-token-file, the second server).
secret() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
REPORT_TOKEN=$(secret)
READ_TOKEN=$(secret)
printf '%s\n' "$REPORT_TOKEN" >"$LOGS/report-token"
printf '%s\n' "$READ_TOKEN" >"$LOGS/read-token"

# Agents: per node a pod-network agent and a host-network one (`-hostnet` in
# the name). Interval 600 s stays fresh for the whole test; interval 1 s is
# outdated 2 s after its report. netchecker-agent-ghost never reports: absent,
# and with no report it has no node (""). The agents of node-a, node-g..node-j
# and the node named with markup take part in the mesh (stage-mesh.mjs); the
# others are like the original's agents: no mesh.
AGENTS=(
  netchecker-agent-a netchecker-agent-hostnet-a
  netchecker-agent-b netchecker-agent-hostnet-b
  netchecker-agent-c netchecker-agent-hostnet-c
  netchecker-agent-d netchecker-agent-e netchecker-agent-x
  netchecker-agent-g netchecker-agent-hostnet-g
  netchecker-agent-h netchecker-agent-hostnet-h
  netchecker-agent-i netchecker-agent-j
  netchecker-agent-ghost
)
expected=$(IFS=,; echo "${AGENTS[*]}")
say "starting netchecker-server on $SERVER"
start_and_wait_ready "$LOGS/server.log" "http://$SERVER/healthz" \
  "$BIN" --kube=false --endpoint "$SERVER" --startup-grace 0 --check-interval 1 --expected-agents "$expected" \
  --report-auth warn --report-token-file "$LOGS/report-token" --mesh-peers 2 --mesh-round 1
SERVER_PID=$BG_PID

OK_DNS='{"netchecker-service":["10.233.0.10"]}'
OK_PROBE='{"URL":"http://netchecker-service:8081/api/v1/ping","ConnectionResult":1,"HTTPCode":200,"Total":3,"ContentTransfer":0,"TCPConnection":1,"DNSLookup":1,"Connect":1,"ServerProcessing":1}'
BAD_PROBE='{"URL":"http://kubernetes.default.svc/healthz","ConnectionResult":0,"HTTPCode":0,"Total":5001,"ContentTransfer":0,"TCPConnection":0,"DNSLookup":1,"Connect":0,"ServerProcessing":0}'

# report NODENAME POD INTERVAL [NSLOOKUP] [PROBES]: one agent report as JSON.
report() {
  printf '{"report_interval":%s,"nodename":"%s","podname":"%s","hostdate":"%s","uptime":1000,"nslookup":%s,"ips":{"eth0":["10.233.64.5/24"]},"network_probes":[%s]}' \
    "$3" "$1" "$2" "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "${4:-$OK_DNS}" "${5:-$OK_PROBE}"
}
# post_to HOST:PORT POD JSON [TOKEN]: a report, with TOKEN as its bearer token
# if given and not empty.
post_to() {
  local auth=()
  [[ -n ${4:-} ]] && auth=(-H "Authorization: Bearer $4")
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' "${auth[@]}" --data-binary "$3" \
    "http://$1/api/v1/agents/$2" || die "POST report of $2 to $1 failed"
}
# post POD JSON [TOKEN]: a report to $SERVER, by default with the
# agents' shared secret (an agent that proves who it is); '' sends none.
post() { post_to "$SERVER" "$1" "$2" "${3-$REPORT_TOKEN}"; }
post netchecker-agent-a "$(report node-a netchecker-agent-a 600)"
post netchecker-agent-hostnet-a "$(report node-a netchecker-agent-hostnet-a 600)"
post netchecker-agent-b "$(report node-b netchecker-agent-b 1)"
# Accepted with --report-auth warn, but shown: no token, a wrong token.
post netchecker-agent-hostnet-b "$(report node-b netchecker-agent-hostnet-b 600)" ''
post netchecker-agent-c "$(report node-c netchecker-agent-c 1)"
post netchecker-agent-hostnet-c "$(report node-c netchecker-agent-hostnet-c 1)"
post netchecker-agent-d "$(report node-d netchecker-agent-d 600 '{"netchecker-service":[]}')" "not-$REPORT_TOKEN"
post netchecker-agent-e "$(report node-e netchecker-agent-e 600 "$OK_DNS" "$OK_PROBE,$BAD_PROBE")"
# node-l's agent tells how its reports went (report_attempts, as our agent
# sends it): one first connection in two went unanswered, 24 of 48: lossy.
# Its mesh probes (it announces no address, so it is left out of the mesh
# itself): two per report that connected, one in four of the 96 raced (12),
# and one whose connect failed, which is not loss.
for i in $(seq 1 48); do
  post netchecker-agent-l "$(report node-l netchecker-agent-l 600 "$OK_DNS" "$OK_PROBE" |
    jq -c --argjson raced $((i % 2)) --argjson mraced "$((i % 4 == 0 ? 1 : 0))" '. + {report_attempts: {attempt: 1, previous: {attempts: 1,
      connects: (1 + $raced), raced: $raced, race_won: $raced, failed: 0, taken: true, first_try: true}},
      mesh: {port: 8083, round: 1, results: [
        {node: "node-a", address: "198.18.0.1", outcome: "ok", connect_us: 300, transfer_us: 900, total_us: 1200, padding: 1500, raced: ($mraced == 1)},
        {node: "node-b", address: "198.18.0.2", outcome: "transfer_failed", connect_us: 300, total_us: 2000000, padding: 1500},
        {node: "node-c", address: "198.18.0.3", outcome: "connect_failed", total_us: 2000000, padding: 1500}]}}')"
done
# A node name is free text in a report: the page must show it as text.
XSS_NODE='node-<img src=x onerror=window.__xss=1>'
post netchecker-agent-x "$(report "$XSS_NODE" netchecker-agent-x 600)"

# The mesh, as agents that serve it report it: node-a on both networks, node-g
# and node-h on both, node-i, node-j and the node named with markup on the pod
# network. On the pod network node-g and node-h cannot reach each other, node-i
# connects to node-j but the padded transfer fails (MTU), node-j cannot reach
# the node named with markup; on the host network node-g's probes of node-h are
# slow. Every other pair answers.
MESH_PLAN=$(jq -nc --arg x "$XSS_NODE" '{
  agents: [
    {name: "netchecker-agent-a", node: "node-a"}, {name: "netchecker-agent-hostnet-a", node: "node-a"},
    {name: "netchecker-agent-g", node: "node-g"}, {name: "netchecker-agent-hostnet-g", node: "node-g"},
    {name: "netchecker-agent-h", node: "node-h"}, {name: "netchecker-agent-hostnet-h", node: "node-h"},
    {name: "netchecker-agent-i", node: "node-i"}, {name: "netchecker-agent-j", node: "node-j"},
    {name: "netchecker-agent-x", node: $x}],
  fail: [
    {from: "node-g", to: "node-h", network: "pod", outcome: "connect_failed", error: "connect: connection timed out"},
    {from: "node-h", to: "node-g", network: "pod", outcome: "connect_failed", error: "connect: connection timed out"},
    {from: "node-i", to: "node-j", network: "pod", outcome: "transfer_failed", error: "no answer within 2 s"},
    {from: "node-j", to: $x, network: "pod", outcome: "connect_failed", error: "connect: no route to host"},
    {from: "node-g", to: "node-h", network: "host", outcome: "slow"}]}')
say "staging the mesh (tests/ui/stage-mesh.mjs)"
BASE_URL="http://$SERVER/" REPORT_TOKEN=$REPORT_TOKEN MESH_PLAN=$MESH_PLAN node tests/ui/stage-mesh.mjs >&2 ||
  die "staging the mesh failed"

EXPECT_JSON=$(jq -nc --arg x "$XSS_NODE" '{"node-a": "healthy", "node-b": "pod_network_down", "node-c": "unreachable",
  "": "unreachable", "node-d": "dns_failure", "node-e": "probe_failures", "node-g": "mesh_partition",
  "node-h": "mesh_partition", "node-i": "mesh_mtu", "node-j": "mesh_partition", ($x): "mesh_partition",
  "node-l": "lossy"}')
# The failing pairs the server must show: [from, to, network, kind].
EXPECT_PAIRS_JSON=$(jq -nc --arg x "$XSS_NODE" '[["node-g", "node-h", "pod", "unreachable"],
  ["node-h", "node-g", "pod", "unreachable"], ["node-i", "node-j", "pod", "mtu"], ["node-j", $x, "pod", "unreachable"],
  ["node-g", "node-h", "host", "slow"]]')
# Who sent each agent's last report, as the server must have checked it (an
# agent that never reported has no result).
EXPECT_AUTH_JSON='{"netchecker-agent-hostnet-b":"missing","netchecker-agent-d":"invalid","netchecker-agent-ghost":null}'
# Posted by the test, without a token.
EXTRA_REPORT=$(report node-f netchecker-agent-f 600)

# --- the server with a read token --------------------------------------------------
LOCKED="127.0.0.1:$(free_port)"
say "starting netchecker-server with --read-token-file on $LOCKED"
start_and_wait_ready "$LOGS/locked.log" "http://$LOCKED/healthz" \
  "$BIN" --kube=false --endpoint "$LOCKED" --startup-grace 0 --check-interval 1 \
  --expected-agents netchecker-agent-a,netchecker-agent-hostnet-a,netchecker-agent-b,netchecker-agent-hostnet-b \
  --read-token-file "$LOGS/read-token" --mesh-peers 0
LOCKED_PID=$BG_PID
# Reports need no read token.
post_to "$LOCKED" netchecker-agent-a "$(report node-a netchecker-agent-a 600)"
post_to "$LOCKED" netchecker-agent-hostnet-a "$(report node-a netchecker-agent-hostnet-a 600)"
post_to "$LOCKED" netchecker-agent-b "$(report node-b netchecker-agent-b 1)"
post_to "$LOCKED" netchecker-agent-hostnet-b "$(report node-b netchecker-agent-hostnet-b 600)"

say "running tests/ui/status-page.test.mjs in headless chromium"
BASE_URL="http://$SERVER/" SERVER_PID=$SERVER_PID EXPECT_JSON=$EXPECT_JSON EXPECT_AUTH_JSON=$EXPECT_AUTH_JSON \
  EXPECT_PAIRS_JSON=$EXPECT_PAIRS_JSON PAGE_FILE="$ROOT/crates/server/assets/status.html" \
  SCREENSHOT=$SCREENSHOT SCREENSHOT_MESH=$SCREENSHOT_MESH EXTRA_REPORT=$EXTRA_REPORT \
  LOCKED_URL="http://$LOCKED/" READ_TOKEN=$READ_TOKEN \
  node tests/ui/status-page.test.mjs

stop_pid "$LOCKED_PID"
