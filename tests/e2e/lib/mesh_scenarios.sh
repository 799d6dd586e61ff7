# shellcheck shell=bash
# The node-to-node mesh scenarios (11-16, and 20 on a lossy node). The server hands every agent its
# peers with the answer to each report, the agents probe them (a fresh TCP
# connection, then a request and an answer padded with -zeroextenderlength
# zeros) and report the results, and /api/v2/status names the pairs that
# failed twice in a row. Both networks the topology models take part: the
# pod-network agents probe each other's pod IPs (198.19.N.2), the
# host-network agents each other's node IPs (198.18.N.2). Faults are staged
# between nodes only, so every agent keeps reporting and the v1 check must
# stay healthy throughout.
#
# They run on the cluster of scenarios 1-10, one after the other; the first
# of them switches the deployment to the mesh (mesh_deploy 1: the server and
# the agents restarted with the mesh flags), a scenario 1-10 after them
# switches it back.

MESH_SCENARIOS=(11 12 13 14 15 16 20)
# 19 (family_scenarios.sh) runs on the mesh too.
is_mesh_scenario() { [[ " ${MESH_SCENARIOS[*]} 19 " == *" $1 "* ]]; }

MESH_MEMBERS=pod=3,host=3
MESH_HEALTHY=node1=healthy,node2=healthy,node3=healthy
# A pair is failing once two probes in a row failed (CONFIRM in
# crates/server/src/mesh/judge.rs).
MESH_CONFIRM=2
# The bound on naming a failing pair, and on clearing it. A probe runs in
# the round that an answer to a report opens and its result reaches the
# server with the agent's next report, one interval later; the first probe
# that fails may start up to one interval after the fault (a probe already
# under way may still complete). So the second failure arrives at most
# (1 + CONFIRM) x INTERVAL = 3 s after the fault, and v2 judges the mesh on
# every request (no check interval adds to it). One more interval covers a
# report that leaves late (the report timeout is half an interval, and the
# agents' rounds are not aligned with each other), and SLACK the rest, as
# for the v1 bound: 5 s. Clearing takes a single good probe, so the same
# bound holds it with room to spare. Nothing can confirm two failures
# sooner than one interval after the fault (two reports, one interval
# apart), hence the floor.
MESH_BOUND=$(((1 + MESH_CONFIRM + 1) * INTERVAL + SLACK))
mesh_detect_in_bound() { [[ -n $1 ]] && le "$INTERVAL" "$1" && le "$1" "$MESH_BOUND"; }
mesh_clear_in_bound() { [[ -n $1 ]] && le "$1" "$MESH_BOUND"; }

mesh_wait() { observe mesh-wait "$@"; }

# mesh_deploy 0|1: the suite's deployment with the mesh off (scenarios
# 1-10) or on (11-16): the server and all six agents restarted with or
# without the mesh flags (cluster.sh). With the mesh on, done once the check
# is healthy and every ordered pair of both networks has been probed and
# answered. Returns 1 when that does not happen.
MESH_UP=""
mesh_deploy() {
    local want=$1 since out
    [[ $MESH == "$want" ]] && return 0
    log "turning the mesh $( ((want == 1)) && echo on || echo off): restarting the server and the agents"
    stop_all_agents
    stop_proc server
    MESH=$want
    since=$(now)
    start_server
    wait_server_ready
    start_all_agents
    out=$(wait_healthy "$since" 15)
    if [[ $(jget "$out" ok) != true ]]; then
        log "not healthy after the restart: $(jget "$out" observed)"
        return 1
    fi
    ((want == 1)) || return 0
    out=$(mesh_wait --since "$since" --timeout 15 --members "$MESH_MEMBERS" --matrix-full)
    MESH_UP=$(jget "$out" detect_s)
    if [[ $(jget "$out" ok) != true ]]; then
        log "the mesh did not come up: members $(jget "$out" members), pairs $(jget "$out" pairs), matrix $(jget "$out" matrix)"
        return 1
    fi
    log "mesh up $MESH_UP s after the restart: members $(jget "$out" members), every pair answered"
}

# first_of LIST FIELD: FIELD of the first item of the JSON list LIST (""
# when the list is empty).
first_of() {
    "$PY" -c '
import json, sys
v = json.loads(sys.argv[1] or "[]")
print(v[0].get(sys.argv[2], "") if v else "")' "$1" "$2"
}

# unexpected_note OUT: " (UNEXPECTED pairs: {...})" when the observer
# (OUT, its JSON) saw pairs outside the expected ones, "" otherwise.
unexpected_note() {
    local u
    u=$(jget "$1" unexpected)
    [[ -z $u || $u == "{}" ]] || printf ' (UNEXPECTED pairs: %s)' "$u"
}

# save_status NAME: the /api/v2/status answer as it is now, kept in the run
# directory as status-NAME.json (what the server said while a fault held).
save_status() { jget "$(observe get /api/v2/status)" body >"$RUN_DIR/status-$1.json"; }

# node_reason NODE: NODE's reason in /api/v2/status.
node_reason() {
    jget "$(observe get /api/v2/status)" body | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print(next((n["reason"] for n in d["nodes"] if n["node"] == sys.argv[1]), ""))' "$1" 2>/dev/null || true
}

# (11) node1 and node2 cut from each other, first on the pod network, then
# on the host network; both keep reaching the server.
scenario_11_mesh_cut() {
    local ok=1 net want since out healed detect clear drops observed="" times=""
    for net in pod host; do
        want="$net:node1>node2:unreachable,$net:node2>node1:unreachable"
        since=$(now)
        fault_mesh_cut "$net" 1 2
        out=$(mesh_wait --since "$since" --timeout 10 --hold 2 --pairs "$want" \
            --verdicts node1=mesh_partition,node2=mesh_partition,node3=healthy --v1-pods 6)
        detect=$(jget "$out" detect_s)
        save_status "11-$net"
        drops=$(rtr_chain_drops NC-MESH-CUT)
        since=$(now)
        restore_mesh_cut
        healed=$(mesh_wait --since "$since" --timeout 10 --allow "$want" --verdicts "$MESH_HEALTHY" --v1-pods 6)
        clear=$(jget "$healed" detect_s)
        if ! [[ $(jget "$out" ok) == true && $(jget "$healed" ok) == true ]] ||
            ! mesh_detect_in_bound "$detect" || ! mesh_clear_in_bound "$clear" || ((drops == 0)); then
            ok=0
        fi
        observed+="${observed:+; }$net network: $(jget "$out" pairs) after ${detect:-never} s and held 2 s"
        observed+="$(unexpected_note "$out"), v2 $(jget "$out" verdicts), reason \`$(first_of "$(jget "$out" failing)" reason)\`"
        observed+=", v1 on all $(jget "$(jget "$out" v1)" polls) polls $(jget "$(jget "$out" v1)" answers), router dropped $drops packets"
        observed+="; healed: no failing pair after ${clear:-never} s$(unexpected_note "$healed")"
        times+="${times:+, }$net ${detect:-none} s (clear ${clear:-none} s)"
    done
    record 11 "node1 and node2 cut from each other (router DROP), pod network then host network, both reach the server" \
        "failing_pairs exactly node1->node2 and node2->node1 on that network, kind unreachable, within ${MESH_BOUND} s, held 2 s; v2 node1, node2 mesh_partition, node3 healthy; v1 '200 All 6 pods' on every poll; no other pair; cleared within ${MESH_BOUND} s of heal" \
        "$observed" "$times" "$([[ $ok == 1 ]] && echo PASS || echo FAIL)"
}

# By hand, what a mesh probe does, from NS to the probe port at ADDR:
# "CONNECT_SECONDS HTTP_CODE" of a POST /mesh/probe padded with BYTES zeros
# (000: no answer within 2 s; a connect time of 0 means no connection).
probe_by_hand() {
    local ns=$1 addr=$2 bytes=$3
    head -c "$bytes" /dev/zero >"$RUN_DIR/probe-$bytes.body"
    in_ns "$ns" curl -sS --noproxy '*' --max-time 2 -o /dev/null -w '%{time_connect} %{http_code}' \
        -H 'Expect:' -X POST --data-binary @"$RUN_DIR/probe-$bytes.body" \
        "http://$addr:$MESH_PORT/mesh/probe" 2>/dev/null || true
}
# Connected (a connect time above 0) but no answer.
connected_no_answer() { local t=${1% *}; [[ ${1#* } == 000 ]] && ! le "${t:-0}" 0; }

# mesh_agents_restart N...: the two agents of each node N restarted, one
# after the other; with PAD=0 in the environment, without padding.
mesh_agents_restart() {
    local n pad_pod=() pad_host=()
    if [[ ${PAD:-} == 0 ]]; then pad_pod=(--zeroextenderlength 0); pad_host=(-zeroextenderlength=0); fi
    for n in "$@"; do
        stop_agent "$n" pod
        start_agent "$n" pod "${pad_pod[@]}"
        stop_agent "$n" host
        start_agent "$n" host "${pad_host[@]}"
    done
}

# (12) A path MTU blackhole between node1 and node3 only (both networks).
scenario_12_mesh_mtu() {
    local ok=1 a=1 b=3 want since out detect
    want="host:node$a>node$b:mtu,host:node$b>node$a:mtu,pod:node$a>node$b:mtu,pod:node$b>node$a:mtu"
    since=$(now)
    fault_mesh_mtu $a $b
    out=$(mesh_wait --since "$since" --timeout 10 --hold 2 --pairs "$want" \
        --verdicts "node$a=mesh_mtu,node2=healthy,node$b=mesh_mtu" --v1-pods 6)
    detect=$(jget "$out" detect_s)
    save_status 12
    [[ $(jget "$out" ok) == true ]] && mesh_detect_in_bound "$detect" || ok=0
    local observed
    observed="$(jget "$out" pairs) after ${detect:-never} s and held 2 s$(unexpected_note "$out"), v2 $(jget "$out" verdicts)"
    observed+=", v1 on all $(jget "$(jget "$out" v1)" polls) polls $(jget "$(jget "$out" v1)" answers)"
    observed+="; the server says: error \`$(first_of "$(jget "$out" failing)" error)\`, reason \`$(first_of "$(jget "$out" failing)" reason)\`"
    # The connect succeeds and the padded transfer does not: the same probe
    # by hand, from pod1 and node1, and to node2 as a control.
    local pod_padded pod_bare host_padded other
    pod_padded=$(probe_by_hand "$(pod_ns $a)" "$(pod_ip $b)" 1500)
    pod_bare=$(probe_by_hand "$(pod_ns $a)" "$(pod_ip $b)" 0)
    host_padded=$(probe_by_hand "$(node_ns $a)" "$(node_ip $b)" 1500)
    other=$(probe_by_hand "$(pod_ns $a)" "$(pod_ip 2)" 1500)
    connected_no_answer "$pod_padded" && connected_no_answer "$host_padded" &&
        [[ ${pod_bare#* } == 200 && ${other#* } == 200 ]] || ok=0
    observed+="; by hand (curl, connect s and HTTP code, 000 = no answer in 2 s): pod$a->pod$b 1500 zeros '$pod_padded', 0 bytes '$pod_bare'"
    observed+=", node$a->node$b 1500 zeros '$host_padded', pod$a->pod2 1500 zeros '$other'"
    local icmp
    icmp=$(rtr_chain_drops NC-MESH-MTU-OUT)
    ((icmp > 0)) || ok=0
    observed+="; $icmp ICMP frag-needed suppressed"
    # The same blackhole with node1's and node3's agents unpadded
    # (-zeroextenderlength=0): every pair answers, nothing is named.
    since=$(now)
    PAD=0 mesh_agents_restart $a $b
    local out0 still
    out0=$(mesh_wait --since "$since" --timeout 15 --hold 6 --allow "$want" --members "$MESH_MEMBERS" \
        --matrix-full --verdicts "$MESH_HEALTHY")
    still=$(probe_by_hand "$(pod_ns $a)" "$(pod_ip $b)" 1500)
    [[ $(jget "$out0" ok) == true ]] && connected_no_answer "$still" || ok=0
    observed+="; with -zeroextenderlength=0 on node$a and node$b under the same blackhole: no failing pair and every pair answered"
    observed+=" after $(jget "$out0" detect_s) s, held 6 s$(unexpected_note "$out0")$([[ -z $(jget "$out0" reason) ]] || echo " ($(jget "$out0" reason): pairs $(jget "$out0" pairs), matrix $(jget "$out0" matrix))")"
    observed+=", while a padded probe by hand still gets '$still'"
    # Restore: the path repaired, the agents padded again.
    restore_mesh_mtu $a $b
    since=$(now)
    mesh_agents_restart $a $b
    local healed
    healed=$(mesh_wait --since "$since" --timeout 15 --members "$MESH_MEMBERS" --matrix-full --verdicts "$MESH_HEALTHY")
    [[ $(jget "$healed" ok) == true ]] || ok=0
    observed+="; repaired, padded again: every pair answered after $(jget "$healed" detect_s) s$(unexpected_note "$healed")"
    record 12 "MTU blackhole between node1 and node3 only (route MTU $MESH_BLACKHOLE_MTU on 1500-byte links, ICMP frag-needed dropped), both networks" \
        "failing_pairs exactly node1<->node3 on both networks, kind mtu, within ${MESH_BOUND} s; v2 node1, node3 mesh_mtu; v1 200 throughout; connect succeeds, padded probe gets no answer; with -zeroextenderlength=0 nothing named" \
        "$observed" "${detect:-none} s" "$([[ $ok == 1 ]] && echo PASS || echo FAIL)"
}

# node2's outbound path to its peers broken (fault_mesh_egress 2 WHAT)
# while it reaches the server: the failing pairs must be exactly WANT, node2
# named mesh_outbound_down, its peers healthy (their pairs with node2 are
# explained by node2's broken path, and count against node2 alone).
# Sets OUT_OK, OUT_DETECT, OUT_CLEAR, OUT_OBSERVED and OUT_TIMES (the
# table's time column).
mesh_outbound() {
    local what=$1 want=$2 n=2 since out
    OUT_OK=1
    since=$(now)
    fault_mesh_egress $n "$what"
    out=$(mesh_wait --since "$since" --timeout 10 --hold 2 --pairs "$want" \
        --verdicts node1=healthy,node$n=mesh_outbound_down,node3=healthy --v1-pods 6)
    OUT_DETECT=$(jget "$out" detect_s)
    save_status "outbound-$what"
    local reason reasons="" m drops
    reason=$(node_reason node$n)
    for m in 1 3; do
        [[ $(jget "$out" verdicts) == *"node$m=healthy"* ]] || reasons+="; node$m's reason \`$(node_reason node$m)\`"
    done
    drops=$(rtr_chain_drops NC-MESH-EGRESS)
    since=$(now)
    restore_mesh_egress
    local healed
    healed=$(mesh_wait --since "$since" --timeout 10 --allow "$want" --verdicts "$MESH_HEALTHY" --v1-pods 6)
    OUT_CLEAR=$(jget "$healed" detect_s)
    if ! [[ $(jget "$out" ok) == true && $(jget "$healed" ok) == true ]] ||
        ! mesh_detect_in_bound "$OUT_DETECT" || ! mesh_clear_in_bound "$OUT_CLEAR" || ((drops == 0)); then
        OUT_OK=0
    fi
    local named
    named=$(jget "$out" pairs_s)
    OUT_OBSERVED="$(jget "$out" pairs)$([[ -n $OUT_DETECT ]] && echo " after $OUT_DETECT s and held 2 s" ||
        echo " named after ${named:-never} s, but $(jget "$out" reason)")"
    OUT_OBSERVED+="$(unexpected_note "$out"); v2 $(jget "$out" verdicts), node$n's reason \`$reason\`$reasons"
    OUT_OBSERVED+="; v1 on all $(jget "$(jget "$out" v1)" polls) polls $(jget "$(jget "$out" v1)" answers); router dropped $drops packets"
    OUT_OBSERVED+="; healed: no failing pair after ${OUT_CLEAR:-never} s$(unexpected_note "$healed")"
    if [[ -n $OUT_DETECT ]]; then
        OUT_TIMES="$OUT_DETECT s (clear ${OUT_CLEAR:-none} s)"
    else
        OUT_TIMES="pairs ${named:-never} s, verdicts never (clear ${OUT_CLEAR:-none} s)"
    fi
}

# (13) node2 opens no connection to any peer (its SYNs dropped), but
# reaches the server; its peers' probes of it still work.
scenario_13_mesh_outbound() {
    mesh_outbound syn "host:node2>node1:unreachable,host:node2>node3:unreachable,pod:node2>node1:unreachable,pod:node2>node3:unreachable"
    record 13 "node2 cannot open a connection to any peer (router drops its SYNs to the other nodes), reaches the server" \
        "failing_pairs exactly node2->node1 and node2->node3 on both networks, unreachable, within ${MESH_BOUND} s, held 2 s; v2 node2 mesh_outbound_down, node1 and node3 healthy; v1 200 throughout; cleared within ${MESH_BOUND} s" \
        "$OUT_OBSERVED" "$OUT_TIMES" "$([[ $OUT_OK == 1 ]] && echo PASS || echo FAIL)"
}

# (16) node2 sends nothing to any peer (everything it sends them dropped,
# the answers to their probes too), but reaches the server: every pair
# with node2 fails, both ways, and all of it is node2's doing.
scenario_16_mesh_outbound_all() {
    local want="" net m
    for net in host pod; do
        for m in 1 3; do want+="${want:+,}$net:node2>node$m:unreachable,$net:node$m>node2:unreachable"; done
    done
    mesh_outbound all "$want"
    record 16 "node2 sends nothing to any peer (router drops all it sends to the other nodes), reaches the server" \
        "failing_pairs exactly the 8 pairs with node2 (both ways, both networks), unreachable, within ${MESH_BOUND} s, held 2 s; v2 node2 mesh_outbound_down, node1 and node3 healthy (their failing pairs are node2's broken path); v1 200 throughout; cleared within ${MESH_BOUND} s" \
        "$OUT_OBSERVED" "$OUT_TIMES" "$([[ $OUT_OK == 1 ]] && echo PASS || echo FAIL)"
}

# (14) Healthy, with the mesh on, polled every second.
scenario_14_mesh_soak() {
    local out ok=0 min_probes
    # Six agents probing two peers each per 1 s round: 12 probes a second;
    # at least half of them must have been recorded as answered.
    min_probes=$((STEADY_SECS * 12 / 2))
    out=$(observe mesh-steady --duration "$STEADY_SECS" --period 1 --members "$MESH_MEMBERS" --v1-pods 6 \
        --min-probes "$min_probes")
    local polls nodes
    polls=$(jget "$out" polls)
    nodes=$(node_verdicts)
    [[ $(jget "$out" ok) == true && $polls -ge $((STEADY_SECS - 2)) && $nodes == "$MESH_HEALTHY" ]] && ok=1
    record 14 "healthy with the mesh on, ${STEADY_SECS} s polled every second" \
        "no failing pair on any poll, members pod=3 and host=3 on every poll, v1 '200 All 6 pods' on every poll, at least $min_probes probes answered" \
        "$polls polls: $(jget "$out" polls_with_failing_pairs) with failing pairs$([[ $(jget "$out" pairs_seen) == "{}" ]] || echo " $(jget "$out" pairs_seen)"), $(jget "$out" polls_wrong_members) with other members; probes recorded $(jget "$out" probes); v1 $(jget "$(jget "$out" v1)" answers); v2 at the end: $nodes" \
        "n/a (no fault)" "$([[ $ok == 1 ]] && echo PASS || echo FAIL)"
}

# (15) node3's pod-network agent's pod deleted while the mesh runs, as
# Kubernetes does it: the pod marked for deletion (deletionTimestamp), its
# agent stopped (the kubelet's SIGTERM), the pod object deleted. Its peers'
# probes of it fail from then on; none of those may ever be named.
MESH_GONE_WATCH=8
scenario_15_mesh_pod_gone() {
    local ok=1 n=3 gone since file watcher
    gone=$(pod_agent_name $n)
    file=$RUN_DIR/mesh-pod-gone.json
    # Watched from 2 s before the deletion to MESH_GONE_WATCH s after it,
    # every 0.2 s.
    observe mesh-steady --duration $((2 + MESH_GONE_WATCH)) --period 0.2 --v1-pods 0 >"$file" &
    watcher=$!
    sleep 2
    since=$(now)
    fake_terminate_pod "$gone"
    stop_agent $n pod
    fake_delete_pod "$gone"
    local gone_after
    gone_after=$(agent_entry_gone "$gone" "$since") || gone_after=never
    wait "$watcher" || true
    local out members left
    out=$(cat "$file")
    members=$(jget "$out" members_seen)
    left=$("$PY" -c '
import json, sys
seen, since = json.loads(sys.argv[1] or "[]"), float(sys.argv[2])
if [m["members"] for m in seen] == ["pod=3,host=3", "pod=2,host=3"]:
    print("%.1f" % (seen[1]["at"] - since))' "$members" "$since")
    [[ $(jget "$out" polls_with_failing_pairs) == 0 && -n $left && $gone_after != never ]] || ok=0
    local observed
    observed="$(jget "$out" polls) polls over $((2 + MESH_GONE_WATCH)) s: $(jget "$out" polls_with_failing_pairs) with failing pairs$([[ $(jget "$out" pairs_seen) == "{}" ]] || echo " $(jget "$out" pairs_seen)")"
    observed+="; pod network members 3 -> 2 ${left:-not as expected: $members} s after the deletion began; GET /api/v1/agents/$gone 404 after $gone_after s"
    observed+="; v1 $(jget "$(jget "$out" v1)" answers)"
    # Restore: the pod back (a new uid, a new token), its agent started.
    since=$(now)
    pod_agent_json $n | fake_add_pod
    start_agent $n pod
    local back
    back=$(mesh_wait --since "$since" --timeout 15 --members "$MESH_MEMBERS" --matrix-full --verdicts "$MESH_HEALTHY")
    [[ $(jget "$back" ok) == true ]] || ok=0
    observed+="; pod back: every pair answered after $(jget "$back" detect_s) s"
    record 15 "node3's pod-network agent pod deleted mid-run (terminating, agent stopped, pod deleted)" \
        "no failing pair on any poll (none involving node3's pod agent, none other); it leaves the pod network's members at once (3 -> 2); back: every pair answered" \
        "$observed" "${left:-none} s (left the mesh)" "$([[ $ok == 1 ]] && echo PASS || echo FAIL)"
}

# (20) The mesh on a lossy node: 20% random loss on what node3 sends (as in
# scenario 8), the mesh on, every agent at the suite's 1 s interval. The
# mesh's probes race their connect like the reports, so a lost SYN costs
# the race delay, not the probe; a pair is named only when two probes in a
# row fail. No pair may be named on any poll. The v1 check is not judged
# here: at a 1 s interval a lossy node's reports are late now and then
# (detection.md, the loss study); scenario 8 judges it at 2 s.
#
# The mesh probes' loss figure (`path.mesh`): node3's own probes lose their
# SYN and its peers' probes of it their SYN-ACK, so node3's share is the
# truth (0.2); the other two nodes meet node3 in half their probes (0.1).
# node3's figure must be within MESH_LOSS_TOLERANCE of 0.2 (at 120 s about
# 480 probes, a standard deviation of about 0.02) and above the others'.
# The server is restarted first so that the 5-minute window holds this
# scenario's probes only.
MESH_LOSS_SECS=${E2E_MESH_LOSS_SECS:-120}
MESH_LOSS_TOLERANCE=0.08
scenario_20_mesh_loss() {
    local n=3 out ok=1 drops figures
    restart_server_watched 0
    ((R_OK == 1)) || ok=0
    fault_loss $n 0.2 up
    out=$(observe mesh-steady --duration "$MESH_LOSS_SECS" --period 1 --v1-pods 0)
    drops=$(rtr_chain_drops NC-LOSS)
    restore_loss
    [[ $(jget "$out" polls_with_failing_pairs) == 0 ]] && ((drops > 0)) || ok=0
    figures=$("$PY" -c '
import json, sys
m, tol = json.loads(sys.argv[1] or "{}"), float(sys.argv[2])
n3 = m.get("node3")
others = [v[0] for k, v in m.items() if k != "node3"]
ok = (n3 is not None and n3[1] >= 100 and abs(n3[0] - 0.2) <= tol
      and len(others) == 2 and all(o < n3[0] for o in others))
print(("ok " if ok else "bad ") + ", ".join(
    f"{k} {v[0]} ({v[2]} of {v[1]})" for k, v in sorted(m.items())))' \
        "$(jget "$out" mesh_loss)" "$MESH_LOSS_TOLERANCE")
    [[ $figures == ok* ]] || ok=0
    # The loss figures live in the server's memory for 5 minutes: a restart
    # clears them for the scenarios after this one.
    restart_server_watched 0
    ((R_OK == 1)) || ok=0
    record 20 "20% random loss on what node3 sends, the mesh on, ${MESH_LOSS_SECS} s" \
        "no failing pair on any poll (a lost SYN or packet is not a partition); node3's mesh loss figure within $MESH_LOSS_TOLERANCE of 0.2 and above each other node's" \
        "$(jget "$out" polls) polls: $(jget "$out" polls_with_failing_pairs) with failing pairs$([[ $(jget "$out" pairs_seen) == "{}" ]] || echo " $(jget "$out" pairs_seen)"); probes recorded $(jget "$out" probes); router dropped $drops packets; mesh loss figures (unanswered of connected): ${figures#* }" \
        "n/a (no alarm expected)" "$([[ $ok == 1 ]] && echo PASS || echo FAIL)"
}
