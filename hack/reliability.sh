#!/usr/bin/env bash
# Full-size reliability run (make reliability): the hostile-input, API-chaos
# and agent-resilience tests of `make test`, built in release mode and run at
# full size, printing their figures. Results belong in doc/reliability.md.
#
#   RELIABILITY_FLOOD_NAMES   made-up agent names posted      (100000)
#   RELIABILITY_MAX_AGENTS    the server's --max-agents        (10000)
#   RELIABILITY_STALLED       stalled connections              (600)
#   RELIABILITY_CHURN_PODS    pods added and deleted           (3000)
#   RELIABILITY_AGENT_ROUNDS  agent rounds back to back        (10000)
#   ATTACKS_BIN_DIR           netchecker-server and netchecker-fake-apiserver
#                             for hack/attacks.py (default: built here, in
#                             $TARGET_DIR/release)
#
# Everything runs on 127.0.0.1; the tests start and kill only their own
# processes. The output is also written to target/reliability.log.
set -euo pipefail
# shellcheck source=hack/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"

export RELIABILITY_FLOOD_NAMES="${RELIABILITY_FLOOD_NAMES:-100000}"
export RELIABILITY_MAX_AGENTS="${RELIABILITY_MAX_AGENTS:-20000}"
export RELIABILITY_STALLED="${RELIABILITY_STALLED:-600}"
export RELIABILITY_CHURN_PODS="${RELIABILITY_CHURN_PODS:-3000}"
export RELIABILITY_AGENT_ROUNDS="${RELIABILITY_AGENT_ROUNDS:-10000}"
CARGO="${CARGO:-cargo}"

# Each stalled connection is a descriptor in the test and one in the server.
want_fds=$((RELIABILITY_STALLED * 2 + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
    ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi

log=target/reliability.log
mkdir -p target
: >"$log"

failed=()
run() {
    local package=$1 test=$2
    echo "== $package: $test" | tee -a "$log"
    # One test binary at a time, one test at a time: the figures are then
    # those of the scenario alone. A failure is reported at the end.
    if ! "$CARGO" test --release -q -p "$package" --test "$test" -- \
        --nocapture --test-threads 1 2>&1 | tee -a "$log"; then
        failed+=("$package/$test")
    fi
}

echo "reliability run at $(git rev-parse --short HEAD) on $(nproc) cores, fd limit $(ulimit -n)" | tee -a "$log"
run netchecker-server hostile
run netchecker-server chaos
run netchecker-agent resilience

# The mesh assignment's coverage at 5,000 nodes (ignored in `make test`:
# minutes in a debug build, seconds in release).
echo "== netchecker-server: mesh cover at 5000 nodes" | tee -a "$log"
if ! "$CARGO" test --release -q -p netchecker-server --lib -- --ignored \
    mesh::assign::tests::every_ordered_pair_is_probed_within_the_cover_time_at_5000_nodes \
    2>&1 | tee -a "$log"; then
    failed+=("netchecker-server/mesh cover at 5000 nodes")
fi

# The attacks of the trust work (doc/security.md), replayed against a server
# run with the Helm chart's defaults and a fake API server (hack/attacks.py).
echo "== attacks on trust (hack/attacks.py)" | tee -a "$log"
if [ -z "${ATTACKS_BIN_DIR:-}" ] && ! "$CARGO" build --release -q \
    -p netchecker-server -p netchecker-fake-apiserver 2>&1 | tee -a "$log"; then
    failed+=("attacks on trust (build)")
elif ! python3 hack/attacks.py --bin-dir "${ATTACKS_BIN_DIR:-$TARGET_DIR/release}" \
    2>&1 | tee -a "$log"; then
    failed+=("attacks on trust")
fi

echo
echo "figures:"
grep -E '(^|[.])(flood|stalls|bad bodies|churn|410 on every watch|agent)|^\| ([1-9] |throughout)' "$log" || true
[ "${#failed[@]}" -eq 0 ] || die "failed: ${failed[*]}"
