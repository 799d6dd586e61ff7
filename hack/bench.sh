#!/usr/bin/env bash
# `make bench`: measure what netchecker costs on this machine and write the
# figures into doc/benchmarks.md, between the markers
# `<!-- bench:begin -->` and `<!-- bench:end -->` (the rest of the document,
# method and history, is kept as written).
#
#   1. the agent's resident memory and CPU per report
#      (hack/agent-footprint.sh);
#   2. the agent's cost per mesh round with K = 0, 8 and 32 peers: CPU,
#      peak memory, bytes on the wire (crates/agent/examples/mesh_round_cost.rs);
#   3. the server: report ingest against a ceiling server, memory with every
#      agent stored, connectivity-check latency over expected pods served by
#      the fake Kubernetes API, and the mesh with MESH_NODES simulated nodes
#      (target/release/netchecker-bench, from crates/bench).
#
# Loopback traffic only; every process started is stopped by PID. Never part
# of `make test`: no figure here is asserted anywhere.
#
# Variables: AGENTS (10000), CONNECTIONS (64), SECONDS_PER_RUN (5), ROUNDS (3),
# CHECKS (1000), MESH_NODES (1000,5000), MESH_PEERS (8), MESH_ROUNDS (300,
# agent rounds per K), REPORTS/RUNS (agent footprint, see its script), OUT (the
# document to update; default doc/benchmarks.md).
set -euo pipefail
# shellcheck source=hack/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"
OUT=${OUT:-doc/benchmarks.md}
BEGIN='<!-- bench:begin -->'
END='<!-- bench:end -->'

{ grep -qF "$BEGIN" "$OUT" && grep -qF "$END" "$OUT"; } || die "$OUT has no $BEGIN ... $END section to fill"

cargo build --release --quiet --workspace --bins

say "agent footprint"
agent_out=$(hack/agent-footprint.sh)
echo "$agent_out" >&2

say "agent mesh round cost"
cargo build --release --quiet -p netchecker-agent --example mesh_round_cost
mesh_agent_out=$("$TARGET_DIR/release/examples/mesh_round_cost" --rounds "${MESH_ROUNDS:-300}")
echo "$mesh_agent_out" >&2

say "server"
server_out=$("$TARGET_DIR/release/netchecker-bench" \
  --bin-dir "$TARGET_DIR/release" \
  --agents "${AGENTS:-10000}" \
  --connections "${CONNECTIONS:-64}" \
  --seconds "${SECONDS_PER_RUN:-5}" \
  --rounds "${ROUNDS:-3}" \
  --checks "${CHECKS:-1000}" \
  --mesh-nodes "${MESH_NODES:-1000,5000}" \
  --mesh-peers "${MESH_PEERS:-8}")
echo "$server_out" >&2

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n1)
results=$(mktemp)
at_exit rm -f "$results" "$results.new"
{
  echo "$BEGIN"
  cat <<MD

Run of $(date -u +%Y-%m-%d) at commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo " (with uncommitted changes)"):
$(nproc) cores (${cpu:-unknown CPU}), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, Linux $(uname -r),
$(rustc --version); release build.

### Agent

\`\`\`
$agent_out
\`\`\`

### Agent, one mesh round (K peers probed, K probes answered)

\`\`\`
$mesh_agent_out
\`\`\`

$server_out

MD
  echo "$END"
} >"$results"
awk -v begin="$BEGIN" -v end="$END" -v file="$results" '
  $0 == begin { while ((getline line < file) > 0) print line; skip = 1; next }
  $0 == end { skip = 0; next }
  !skip { print }
' "$OUT" >"$results.new"
mv "$results.new" "$OUT"
say "updated $OUT"
