#!/usr/bin/env bash
# `make bench`: measure what netchecker costs on this machine and write the
# figures into doc/benchmarks.md, between the markers
# `<!-- bench:begin -->` and `<!-- bench:end -->` (the rest of the document,
# method and history, is kept as written).
#
#   1. the agent's resident memory and CPU per report
#      (hack/agent-footprint.sh);
#   2. the server: report ingest against a ceiling server, memory with every
#      agent stored, connectivity-check latency over expected pods served by
#      the fake Kubernetes API (target/release/netchecker-bench, from
#      crates/bench).
#
# Loopback traffic only; every process started is stopped by PID. Never part
# of `make test`: no figure here is asserted anywhere.
#
# Variables: AGENTS (10000), CONNECTIONS (64), SECONDS_PER_RUN (5), ROUNDS (3),
# CHECKS (1000), REPORTS/RUNS (agent footprint, see its script), OUT (the
# document to update; default doc/benchmarks.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT=${OUT:-doc/benchmarks.md}
BEGIN='<!-- bench:begin -->'
END='<!-- bench:end -->'

if ! grep -qF "$BEGIN" "$OUT" || ! grep -qF "$END" "$OUT"; then
  echo "bench: $OUT has no $BEGIN ... $END section to fill" >&2
  exit 1
fi

cargo build --release --quiet --workspace --bins

echo "== agent footprint" >&2
agent_out=$(hack/agent-footprint.sh)
echo "$agent_out" >&2

echo "== server" >&2
server_out=$(target/release/netchecker-bench \
  --agents "${AGENTS:-10000}" \
  --connections "${CONNECTIONS:-64}" \
  --seconds "${SECONDS_PER_RUN:-5}" \
  --rounds "${ROUNDS:-3}" \
  --checks "${CHECKS:-1000}")
echo "$server_out" >&2

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n1)
results=$(mktemp)
trap 'rm -f "$results" "$results.new"' EXIT
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
echo "bench: updated $OUT" >&2
