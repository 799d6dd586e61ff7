# shellcheck shell=bash
# `run.sh --loss-study`: how report interval, loss direction and the agent's
# timeouts interact; the measurement behind scenario 8's settings. Agents at
# several intervals report to a stand-in server that logs the arrival time of
# each report, from node2 (20% loss on what node2 sends) and from node3 (20%
# loss both ways), pod and host network each. A gap between two arrivals
# longer than factor (2) x interval is a window in which the server would have
# called that agent Outdated: a false alarm, since every report would have got
# through without the loss. Failed rounds are counted from the agents' logs.

STUDY_SECS=${E2E_STUDY_SECS:-240}
STUDY_INTERVALS=(1 2 5 10 20)

run_loss_study() {
    [[ -x $BIN_DIR/netchecker-agent ]] || die "$BIN_DIR/netchecker-agent missing"
    start_proc study-http "$NS_SRV" -- "$PY" "$E2E_DIR/lib/selftest_server.py" "$SERVER_PORT"
    sleep 1
    fault_loss 2 0.2 up
    add_loss_rule 3 0.2 both
    local r n kind
    for r in "${STUDY_INTERVALS[@]}"; do
        for n in 2 3; do
            for kind in pod host; do
                local ns
                if [[ $kind == pod ]]; then ns=$(pod_ns $n); else ns=$(node_ns $n); fi
                start_proc "study-node$n-$kind-r$r" "$ns" "MY_POD_NAME=study-node$n-$kind-r$r" "MY_NODE_NAME=node$n" -- \
                    "$BIN_DIR/netchecker-agent" --reportinterval "$r"
            done
        done
    done
    log "loss study: 20% loss on node2's sent packets and both ways on node3 for ${STUDY_SECS} s"
    sleep "$STUDY_SECS"
    local drops
    drops=$(rtr_chain_drops NC-LOSS)
    stop_all_procs
    restore_loss
    "$PY" - "$RUN_DIR" "$STUDY_SECS" "$drops" <<'PY' | tee "$RUN_DIR/loss-study.md"
import collections, glob, os, re, sys
run_dir, secs, drops = sys.argv[1], float(sys.argv[2]), sys.argv[3]
arrivals = collections.defaultdict(list)
for line in open(os.path.join(run_dir, "study-http.log")):
    m = re.match(r'([\d.]+) \S+ "POST /api/v1/agents/study-node(\d)-(pod|host)-r(\d+) ', line)
    if m:
        arrivals[(int(m.group(4)), int(m.group(2)), m.group(3))].append(float(m.group(1)))
failed = {}
for path in glob.glob(os.path.join(run_dir, "study-node*-r*.log")):
    m = re.search(r'study-node(\d)-(pod|host)-r(\d+)\.log$', path)
    failed[(int(m.group(3)), int(m.group(1)), m.group(2))] = sum(
        "report failed" in l for l in open(path))
loss = {2: "20% on what the node sends", 3: "20% both ways"}
print(f"{secs:.0f} s per agent, {drops} packets dropped by the router\n")
print("| loss | interval | report timeout | agent | rounds | failed rounds | longest gap | gaps > 2 x interval (false Outdated) |")
print("|---|---|---|---|---|---|---|---|")
for key in sorted(arrivals, key=lambda k: (k[1], k[0], k[2])):
    r, n, kind = key
    ts = arrivals[key]
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    print(f"| {loss[n]} | {r} s | {min(r / 2, 10):g} s | {kind} | {int(secs // r) + 1} | {failed.get(key, '?')} | "
          f"{max(gaps) if gaps else 0:.1f} s | {sum(g > 2 * r for g in gaps)} |")
PY
}
