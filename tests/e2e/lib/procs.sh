# shellcheck shell=bash
# Process bookkeeping of the end-to-end harness, on top of hack/lib/common.sh
# (say, die, stop_pid, the exit trap), and timed log lines.
#
# Every process the harness starts is recorded (name -> PID) in memory, with
# the library (stopped on exit) and in a state file, so teardown (and the
# stale-run cleanup of a later run) kills exactly those PIDs and nothing else.

log() { say "$(date -u +%H:%M:%S) $*"; }

# Seconds since the epoch with sub-second precision (used for timing).
now() { date +%s.%N; }

# Seconds (one decimal) from $1 to now.
elapsed_since() { python3 -c 'import sys,time; print(f"{time.time()-float(sys.argv[1]):.1f}")' "$1"; }

declare -A PIDS=()   # process name -> PID

# start_proc NAME NS ENV=VAL... -- CMD ARGS...
# Runs CMD inside namespace NS with the given environment, stdout and stderr
# appended to $RUN_DIR/NAME.log. `ip netns exec` and `env` both exec(), so the
# recorded PID is the PID of the real process, not of a wrapper.
start_proc() {
    local name=$1 ns=$2
    shift 2
    local -a envs=()
    while [[ $# -gt 0 && $1 != -- ]]; do envs+=("$1"); shift; done
    [[ ${1:-} == -- ]] && shift
    [[ -z ${PIDS[$name]:-} ]] || die "process $name already running (PID ${PIDS[$name]})"
    printf '%s ---- start in %s: %s %s\n' "$(date -u +%FT%T.%3NZ)" "$ns" "${envs[*]}" "$*" >>"$RUN_DIR/$name.log"
    # 9>&-: the run lock stays with the harness, never with its children.
    ip netns exec "$ns" env "${envs[@]}" "$@" >>"$RUN_DIR/$name.log" 2>&1 9>&- &
    local pid=$!
    PIDS[$name]=$pid
    track_pid "$pid"
    echo "$pid $ns $name" >>"$STATE_DIR/pids"
    log "started $name (PID $pid) in $ns"
}

# stop_proc NAME: stop_pid on the PID recorded for NAME, and only on that.
stop_proc() {
    local name=$1 pid=${PIDS[$1]:-}
    [[ -n $pid ]] || return 0
    stop_pid "$pid"
    unset "PIDS[$name]"
    printf '%s ---- stopped\n' "$(date -u +%FT%T.%3NZ)" >>"$RUN_DIR/$name.log"
}

# kill_proc NAME: SIGKILL to the PID recorded for NAME, as a crash (none of
# its shutdown runs), reaped at once; then the bookkeeping of stop_proc.
kill_proc() {
    local name=$1 pid=${PIDS[$1]:-}
    [[ -n $pid ]] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    printf '%s ---- killed (SIGKILL)\n' "$(date -u +%FT%T.%3NZ)" >>"$RUN_DIR/$name.log"
    stop_proc "$name"
}

stop_all_procs() {
    local name
    for name in "${!PIDS[@]}"; do stop_proc "$name"; done
}

# Processes recorded by a previous run that crashed (or was SIGKILLed before
# its trap ran). A PID is only signalled when it still lives in one of this
# harness's namespaces, so a recycled PID of an unrelated process is never hit.
kill_stale_procs() {
    local file=$STATE_DIR/pids pid ns name cur
    [[ -f $file ]] || return 0
    while read -r pid ns name; do
        cur=$(ip netns identify "$pid" 2>/dev/null || true)
        if [[ -n $cur && $cur == "$ns" ]]; then
            log "killing stale $name (PID $pid) left in $ns by an earlier run"
            stop_pid "$pid" 1
        fi
    done <"$file"
    : >"$file"
}
