# shellcheck shell=bash
# Observation and verdicts: the observer (observe.py) runs inside the server
# namespace and polls the server on its loopback, as an operator's curl would.

# The interpreter's real path (not a version-manager shim), resolved once the
# tools are installed.
PY=""
resolve_python() { PY=$(python3 -c 'import sys; print(sys.executable)'); }

# observe ARGS... -> the observer's JSON on stdout; never fails (the JSON says).
observe() {
    in_ns "$NS_SRV" "$PY" "$E2E_DIR/lib/observe.py" --base "http://127.0.0.1:$SERVER_PORT" "$@" ||
        true
}

# jget JSON KEY -> the value (numbers as is, lists/objects as JSON, null -> "").
jget() {
    "$PY" -c '
import json, sys
v = json.loads(sys.argv[1]).get(sys.argv[2])
print("" if v is None else (v if isinstance(v, str) else json.dumps(v)))' "$1" "$2"
}

# Float comparison: le A B -> A <= B.
le() { "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$1" "$2"; }

# wait_answer SINCE TIMEOUT HOLD CODE PODS ABSENT OUTDATED -> JSON
wait_answer() {
    observe wait --since "$1" --timeout "$2" --hold "$3" --code "$4" --pods "$5" --absent "$6" --outdated "$7"
}
wait_healthy() { wait_answer "$1" "${2:-15}" 0 200 "${3:-6}" "" ""; }

# node_verdicts -> "node1=healthy,node2=unreachable,..." from /api/v2/status
# (the per-node diagnosis), "" when the server does not answer.
node_verdicts() {
    in_ns "$NS_SRV" curl -sS --noproxy '*' --max-time 3 \
        "http://127.0.0.1:$SERVER_PORT/api/v2/status" 2>/dev/null |
        "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print(",".join(n["node"] + "=" + n["verdict"] for n in d["nodes"]))' 2>/dev/null || true
}

# agent_auths -> "ok=6" (agents per `auth` result in /api/v2/status: ok,
# missing, invalid, forbidden; "None" when the server checks nothing).
agent_auths() {
    in_ns "$NS_SRV" curl -sS --noproxy '*' --max-time 3 \
        "http://127.0.0.1:$SERVER_PORT/api/v2/status" 2>/dev/null |
        "$PY" -c '
import collections, json, sys
d = json.load(sys.stdin)
c = collections.Counter(str(a.get("auth")) for n in d["nodes"] for a in n["agents"])
print(",".join(f"{k}={v}" for k, v in sorted(c.items())))' 2>/dev/null || true
}

# rejected REASON -> netchecker_reports_rejected_total{reason=REASON} as an
# integer, "" if the server does not answer.
rejected() {
    local v
    v=$(jget "$(observe metric netchecker_reports_rejected_total "reason=$1")" value)
    echo "${v%.*}"
}

# Comma-joined sorted names, the form the observer compares with.
csv() { printf '%s\n' "$@" | sort | paste -sd, -; }

# Results: one row per scenario.
RESULTS=()
FAILED=0
# A scenario the run's mode cannot stage (18 outside E2E_FAMILIES=dual) is
# recorded as SKIPPED: neither passed nor failed.
SKIPPED=0
record() {
    local num=$1 title=$2 expected=$3 observed=$4 detect=$5 verdict=$6
    RESULTS+=("$num"$'\t'"$title"$'\t'"$expected"$'\t'"$observed"$'\t'"$detect"$'\t'"$verdict")
    if [[ $verdict == SKIPPED ]]; then
        SKIPPED=$((SKIPPED + 1))
    elif [[ $verdict != PASS ]]; then
        FAILED=$((FAILED + 1))
    fi
    log "scenario $num ($title): $verdict - $observed"
}

results_table() {
    local row num title expected observed detect verdict
    echo "| # | scenario | expected | observed | time to detect | result |"
    echo "|---|----------|----------|----------|----------------|--------|"
    for row in "${RESULTS[@]}"; do
        IFS=$'\t' read -r num title expected observed detect verdict <<<"$row"
        echo "| $num | $title | ${expected//|/\\|} | ${observed//|/\\|} | $detect | $verdict |"
    done
}

# The failed scenarios again, one line each with what was observed: the
# last lines of a run (what a CI log's tail keeps) say what failed.
failures_recap() {
    local row num title expected observed detect verdict
    for row in "${RESULTS[@]}"; do
        IFS=$'\t' read -r num title expected observed detect verdict <<<"$row"
        [[ $verdict == PASS || $verdict == SKIPPED ]] && continue
        echo "e2e: FAILED scenario $num ($title): $observed"
    done
}
