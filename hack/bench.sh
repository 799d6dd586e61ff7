#!/usr/bin/env bash
# `make bench`: measure the agent's footprint and the server's throughput,
# check latency and memory, and write the results with the machine and the
# method to doc/benchmarks.md. Loopback traffic only; every process started
# is stopped by PID. Benchmarks are never part of `make test`.
#
# Variables: AGENTS (server benchmark, default "10000 50000"), SECONDS_PER_RUN (10)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
read -r -a AGENT_COUNTS <<<"${AGENTS:-10000 50000}"
RUN_SECONDS=${SECONDS_PER_RUN:-10}
OUT=doc/benchmarks.md

cargo build --release --quiet --workspace --bins
cargo build --release --quiet -p netchecker-server --examples

echo "== agent footprint" >&2
agent_out=$(crates/agent/benches/agent_footprint.sh)
echo "$agent_out" >&2

server_out=""
for n in "${AGENT_COUNTS[@]}"; do
  echo "== server load, $n agents" >&2
  run=$(target/release/examples/load --server target/release/netchecker-server --agents "$n" --seconds "$RUN_SECONDS")
  echo "$run" >&2
  server_out+=$'\n'"### $n agents"$'\n\n'"$run"$'\n'
done

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n1)
{
  cat <<MD
# Benchmarks

Produced by \`make bench\` (\`hack/bench.sh\`) on $(date -u +%Y-%m-%d). Benchmarks
are separate from the tests: no test asserts a speed.

Machine: $(nproc) cores (${cpu:-unknown CPU}), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM,
Linux $(uname -r), $(rustc --version). Release build (\`lto = "thin"\`,
\`codegen-units = 1\`). The load generator and the server share the same
cores, so the server figures are lower bounds.

## Agent footprint

Targets: under 10 MB resident memory and under 5 ms CPU per report, with the
default padding (1500 zeros) and two probe URLs.

Method (\`crates/agent/benches/agent_footprint.sh\`): the release agent
reports every second to a minimal HTTP server on loopback (so the numbers
are the agent's alone), with padding 1500, the server ping plus two probe
URLs, and the server named \`localhost\` so every round resolves it through
getaddrinfo as in a cluster. Peak memory is \`VmHWM\` from
\`/proc/PID/status\`; steady CPU per report is the on-CPU time of all the
agent's threads (\`/proc/PID/task/*/schedstat\`) between the first and the
last report divided by the reports in between; "everything" is user+system
time from \`wait4\` after SIGTERM (start-up and exit included) divided by all
reports.

\`\`\`
$agent_out
\`\`\`

## Server throughput, check latency and memory

Method (\`crates/server/examples/load.rs\`): the release server runs without
Kubernetes on 127.0.0.1. 32 keep-alive connections POST the Go agent's
padded report (3.4 KB) for ${RUN_SECONDS} s, cycling over N distinct agent
names, so the cache ends with N agents, all expected. Then 200 sequential
\`GET /api/v1/connectivity_check\` requests are timed (each judges all N
agents). Server CPU is utime+stime from \`/proc/PID/stat\` over the ingest
phase; memory per agent is the growth of \`VmRSS\` from idle to a full cache,
divided by N (it includes each agent's metric series).
$server_out
MD
} >"$OUT"
echo "wrote $OUT" >&2
