# shellcheck shell=bash
# `run.sh --loss-study`: how report interval and packet loss interact, the
# measurement behind the interval scenario 8 uses. Agents at several intervals
# report from node3 (pod and host network) to a stand-in server that logs the
# arrival time of each report, while the router drops 20% of node3's packets
# both ways. A gap between two arrivals longer than factor (2) x interval is
# a window in which the server would have called that agent Outdated: a false
# alarm, since every report would have got through without the loss.

STUDY_SECS=${E2E_STUDY_SECS:-240}
STUDY_INTERVALS=(1 2 5 10)

run_loss_study() {
    [[ -x $BIN_DIR/netchecker-agent ]] || die "$BIN_DIR/netchecker-agent missing"
    start_proc study-http "$NS_SRV" -- "$PY" "$E2E_DIR/lib/selftest_server.py" "$SERVER_PORT"
    sleep 1
    fault_loss 3 0.2
    local r
    for r in "${STUDY_INTERVALS[@]}"; do
        start_proc "study-pod-r$r" "$(pod_ns 3)" "MY_POD_NAME=study-pod-r$r" MY_NODE_NAME=node3 -- \
            "$BIN_DIR/netchecker-agent" --reportinterval "$r"
        start_proc "study-host-r$r" "$(node_ns 3)" "MY_POD_NAME=study-host-r$r" MY_NODE_NAME=node3 -- \
            "$BIN_DIR/netchecker-agent" --reportinterval "$r"
    done
    log "loss study: 20% loss both ways on node3's uplink for ${STUDY_SECS} s"
    sleep "$STUDY_SECS"
    local drops
    drops=$(rtr_chain_drops NC-LOSS)
    stop_all_procs
    restore_loss
    "$PY" - "$RUN_DIR/study-http.log" "$STUDY_SECS" "$drops" <<'PY' | tee "$RUN_DIR/loss-study.md"
import collections, re, sys
log, secs, drops = sys.argv[1], float(sys.argv[2]), sys.argv[3]
arrivals = collections.defaultdict(list)
for line in open(log):
    m = re.match(r'([\d.]+) \S+ "POST /api/v1/agents/study-(?:pod|host)-r(\d+) ', line)
    if m:
        arrivals[(int(m.group(2)), line.split('study-')[1].split('-')[0])].append(float(m.group(1)))
print(f"20% loss both ways, {secs:.0f} s per agent, {drops} packets dropped by the router\n")
print("| interval | report timeout | agent | rounds | reports arrived | longest gap | gaps > 2 x interval (false Outdated) |")
print("|---|---|---|---|---|---|---|")
for (r, kind), ts in sorted(arrivals.items()):
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    print(f"| {r} s | {r / 2:g} s | {kind} | {int(secs // r) + 1} | {len(ts)} | "
          f"{max(gaps) if gaps else 0:.1f} s | {sum(g > 2 * r for g in gaps)} |")
PY
}
