# shellcheck shell=bash
# Scenario 17: two server replicas, as the Helm chart runs them: a
# Deployment of two behind a headless Service whose name resolves to both
# (publishing not-ready addresses), agents that report to every address of
# that name (`--report-to-all-addresses`). Both replicas elect a leader
# through a Lease in the fake API (short timings: the lease lasts 3 s, a
# leader steps down after 2 s without renewal, attempts every 1 s, as
# crates/server/tests/leader.rs runs them), both are ready only once warm
# (`--ready-when-warm`, a flag like --leader-election) and both would POST node verdict changes to a webhook receiver
# (lib/webhook_receiver.py, in the server namespace), which only the
# leader does.
#
# The replicas share the server namespace, each on an address of its own
# at the usual port: the first is the suite's usual server (process
# `server`, $SRV_IP), the second (process `server-b`) listens on
# $SRV_B_IP, an address added to the namespace's uplink for the scenario.
# The service name resolves to both in every node and pod. Scenarios 1-16
# never see any of it: the scenario ends with the usual single server on
# all addresses, the name resolving to it alone, and agents started as
# before.

# shellcheck disable=SC2034 # read by run.sh
HA_SCENARIOS=(17)
SRV_B_IP=198.18.0.3
WEBHOOK_PORT=8090
HA_LEASE=netchecker-server
LEASE_DURATION=3
LEASE_RENEW_DEADLINE=2
LEASE_RETRY_PERIOD=1
# A released lease is taken at the other replica's next attempt: one retry
# period, well within the lease's duration, which is the bound held to. A
# crashed leader's lease must run out first: at most its duration after
# the last renewal, plus one attempt, plus SLACK; and not sooner than the
# duration less the retry period after the kill (the last renewal came at
# most one retry period before it).
HANDOVER_BOUND=$LEASE_DURATION
TAKEOVER_MIN=$((LEASE_DURATION - LEASE_RETRY_PERIOD))
TAKEOVER_BOUND=$((LEASE_DURATION + LEASE_RETRY_PERIOD + SLACK))
# How long a replica's poller watches a hand-over (the other one's end).
HA_WATCH_SECS=$((LEASE_DURATION + LEASE_RETRY_PERIOD + 4))
# The receiver's record (webhook_receiver.py), one JSON line per POST.
HOOK_FILE=""

# shellcheck disable=SC2153 # SERVER_PORT is cluster.sh's
ha_addr() { if [[ $1 == server ]]; then echo "$SRV_IP:$SERVER_PORT"; else echo "$SRV_B_IP:$SERVER_PORT"; fi; }
ha_id() { if [[ $1 == server ]]; then echo server-a; else echo server-b; fi; }
ha_base() { echo "http://$(ha_addr "$1")"; }
ha_other() { if [[ $1 == server ]]; then echo server-b; else echo server; fi; }

# The observers, on any replica, in the server namespace; never fail (the
# JSON says).
ha_py() { in_ns "$NS_SRV" "$PY" "$E2E_DIR/lib/ha_observe.py" "$@" || true; }
observe_on() {
    local name=$1
    shift
    in_ns "$NS_SRV" "$PY" "$E2E_DIR/lib/observe.py" --base "$(ha_base "$name")" "$@" || true
}

# B - A in seconds, one decimal ("" when either is empty).
secs_between() {
    [[ -n $1 && -n $2 ]] || { echo ""; return 0; }
    "$PY" -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$1" "$2"
}

# ha_leaders TIMEOUT NAME...: which of the replicas NAME lead, and the
# Lease's holder; with TIMEOUT > 0, until exactly one leads and holds it.
ha_leaders() {
    local timeout=$1 name args=()
    shift
    for name in "$@"; do args+=(--replica "$name=$(ha_id "$name")=$(ha_base "$name")"); done
    ha_py leaders "${args[@]}" --leases "$FAKE_API/fake/leases" --namespace "$K8S_NAMESPACE" \
        --lease "$HA_LEASE" --timeout "$timeout"
}

start_ha_replica() {
    local name=$1
    start_server_replica "$name" "$(ha_addr "$name")" \
        --leader-election --leader-election-namespace "$K8S_NAMESPACE" \
        --leader-election-lease "$HA_LEASE" --leader-election-identity "$(ha_id "$name")" \
        --lease-duration "$LEASE_DURATION" --lease-renew-deadline "$LEASE_RENEW_DEADLINE" \
        --lease-retry-period "$LEASE_RETRY_PERIOD" \
        --ready-when-warm --webhook-url "http://127.0.0.1:$WEBHOOK_PORT/hook"
}

ha_ready() { srv_curl -f -o /dev/null "$(ha_base "$1")/readyz"; }

# The service name of every node and pod resolves to SERVICE_IPS.
ha_write_hosts() {
    local n
    for n in "${NODES[@]}"; do
        set_service_entry "$(node_ns "$n")" 1
        set_service_entry "$(pod_ns "$n")" 1
    done
}

# The two replicas, the receiver and agents reporting to both. The first
# replica leads before the second starts, so which one leads is known (the
# scenario still reads it rather than assume it).
ha_deploy() {
    stop_all_agents
    stop_proc server
    ip -n "$NS_SRV" addr add "$SRV_B_IP/24" dev eth0
    SERVICE_IPS=("$SRV_IP" "$SRV_B_IP")
    ha_write_hosts
    HOOK_FILE=$RUN_DIR/webhook-events.jsonl
    rm -f "$HOOK_FILE"
    start_proc webhook "$NS_SRV" -- "$PY" -u "$E2E_DIR/lib/webhook_receiver.py" \
        --listen "127.0.0.1:$WEBHOOK_PORT" --out "$HOOK_FILE"
    wait_ready "${PIDS[webhook]}" "$RUN_DIR/webhook.log" 10 srv_curl -f -o /dev/null "http://127.0.0.1:$WEBHOOK_PORT/"
    start_ha_replica server
    local out n
    out=$(ha_leaders 15 server)
    [[ $(jget "$out" leader) == server ]] || log "the first replica does not lead: $out"
    start_ha_replica server-b
    for n in "${NODES[@]}"; do
        start_agent "$n" pod --report-to-all-addresses
        start_agent "$n" host -report-to-all-addresses=true
    done
    wait_ready "${PIDS[server]}" "$RUN_DIR/server.log" 15 ha_ready server
    wait_ready "${PIDS[server-b]}" "$RUN_DIR/server-b.log" 15 ha_ready server-b
}

# Back to the suite's deployment: one server on all addresses at
# $SERVER_PORT, without leader election, the name resolving to it alone,
# agents reporting to the name. Returns 1 when it is not healthy within
# the usual bound.
ha_undeploy() {
    local since
    stop_all_agents
    stop_proc server-b
    stop_proc server
    stop_proc webhook
    SERVICE_IPS=("${SERVICE_IPS_USUAL[@]}")
    ha_write_hosts
    ip -n "$NS_SRV" addr del "$SRV_B_IP/24" dev eth0 2>/dev/null || true
    since=$(now)
    start_server
    wait_server_ready
    start_all_agents
    restore_and_wait "$since"
}

# ha_handover HOW NAME: stop replica NAME (HOW: stop = SIGTERM, kill =
# SIGKILL) while a poller watches the other one's check and
# netchecker_leader every 0.2 s. Sets HO_OUT (the poller's JSON) and HO_S
# (seconds from the signal to the other replica first seen leading).
ha_handover() {
    local how=$1 name=$2 other wfile wpid t0
    other=$(ha_other "$name")
    wfile=$RUN_DIR/ha-watch-$how-$name.json
    ha_py watch --base "$(ha_base "$other")" --duration "$HA_WATCH_SECS" --pods 6 >"$wfile" &
    wpid=$!
    # The poller sees the other replica follow first.
    sleep 1
    t0=$(now)
    if [[ $how == kill ]]; then kill_proc "$name"; else stop_proc "$name"; fi
    log "$name stopped ($how) after $(elapsed_since "$t0") s"
    wait "$wpid" || true
    HO_OUT=$(cat "$wfile")
    HO_S=$(secs_between "$t0" "$(jget "$HO_OUT" lead_at)")
}

# ha_restart NAME: start replica NAME again and watch its /readyz and check
# every 0.1 s from the spawn on. Sets WARM_OUT and WARM_OK (1: 503 until
# ready, ready before its start-up grace would have made it so, and from
# then on nothing but the healthy answer and /readyz 200).
ha_restart() {
    local name=$1 since ready
    since=$(now)
    start_ha_replica "$name"
    WARM_OUT=$(ha_py warm --base "$(ha_base "$name")" --since "$since" --duration "$((GRACE + 3))" --pods 6)
    ready=$(jget "$WARM_OUT" ready_s)
    WARM_OK=0
    if [[ $(jget "$WARM_OUT" ok) == true && -n $ready ]] && le "$ready" "$((GRACE - 1))"; then
        WARM_OK=1
    fi
}

scenario_17_ha() {
    local ok=1 out detail=()
    ha_deploy

    # (1) Both replicas get every agent's reports: each answers the exact
    # healthy check, held for 3 s (an agent silent on one of them would be
    # Outdated there within 2 s).
    local name both="" resolved
    # The name resolves to both replicas, as a headless Service's does.
    resolved=$(in_ns "$(pod_ns 1)" getent ahosts "$SERVICE_NAME" | awk '{print $1}' | sort -u | paste -sd, - || true)
    [[ $resolved == "$SRV_IP,$SRV_B_IP" ]] || ok=0
    for name in server server-b; do
        out=$(observe_on "$name" wait --timeout 15 --hold 3 --code 200 --pods 6 --absent "" --outdated "")
        [[ $(jget "$out" ok) == true ]] || ok=0
        both+="${both:+, }$(ha_id "$name") $(jget "$out" observed)$([[ $(jget "$out" ok) == true ]] || echo " ($(jget "$out" reason))")"
    done
    out=$(ha_leaders 10 server server-b)
    local leader other
    leader=$(jget "$out" leader)
    [[ -n $leader ]] || { ok=0; leader=server; log "no single leader: $out"; }
    other=$(ha_other "$leader")
    detail+=("$SERVICE_NAME resolves to $resolved; both replicas: $both, held 3 s; leader $(ha_id "$leader") (Lease holder $(jget "$out" holder))")

    # (2) SIGTERM to the leader: the other answers throughout and leads
    # within the lease's duration.
    ha_handover stop "$leader"
    local handover=$HO_S
    [[ $(jget "$HO_OUT" ok) == true && -n $handover ]] && le "$handover" "$HANDOVER_BOUND" || ok=0
    out=$(ha_leaders 5 "$other")
    [[ $(jget "$out" holder) == "$(ha_id "$other")" ]] || ok=0
    detail+=("SIGTERM to $(ha_id "$leader"): $(ha_id "$other") leads after ${handover:-never} s (Lease holder $(jget "$out" holder)); its check on $(jget "$HO_OUT" polls) polls meanwhile: $(jget "$HO_OUT" answers)")

    # (3) With one replica down, node2's pod network cut (scenario 3's
    # fault): detected within the usual bound, the webhook told once; heal.
    local want verdicts since detect event_s recovery recovery_event_s
    want=$(pod_agent_name 2)
    verdicts=node1=healthy,node2=pod_network_down,node3=healthy
    since=$(now)
    fault_pod_link_down 2
    out=$(observe_on "$other" wait --since "$since" --timeout 15 --hold 3 --code 400 --pods 6 --absent "" \
        --outdated "$want" --verdicts "$verdicts")
    detect=$(jget "$out" detect_s)
    [[ $(jget "$out" ok) == true ]] && in_bound "$detect" || ok=0
    local fault_seen
    fault_seen="$(jget "$out" observed), v2 $(jget "$out" verdicts)"
    out=$(ha_py wait-event --file "$HOOK_FILE" --node node2 --old healthy --new pod_network_down \
        --since "$since" --timeout 15)
    event_s=$(jget "$out" after_s)
    [[ $(jget "$out" ok) == true ]] || ok=0
    since=$(now)
    restore_pod_link_down 2
    out=$(observe_on "$other" wait --since "$since" --timeout 20 --code 200 --pods 6 --absent "" --outdated "" \
        --verdicts node1=healthy,node2=healthy,node3=healthy)
    recovery=$(jget "$out" detect_s)
    [[ $(jget "$out" ok) == true ]] && le "$recovery" "$BOUND" || ok=0
    out=$(ha_py wait-event --file "$HOOK_FILE" --node node2 --old pod_network_down --new healthy \
        --since "$since" --timeout 15)
    recovery_event_s=$(jget "$out" after_s)
    [[ $(jget "$out" ok) == true ]] || ok=0
    detail+=("$(ha_id "$leader") down, node2 pod link cut: $fault_seen after ${detect:-never} s, webhook event after ${event_s:-never} s; healed: 200 and v2 healthy after ${recovery:-never} s, event after ${recovery_event_s:-never} s")

    # (4) The stopped replica back: 503 until warm, then only healthy.
    ha_restart "$leader"
    ((WARM_OK == 1)) || ok=0
    local ready
    ready=$(jget "$WARM_OUT" ready_s)
    detail+=("$(ha_id "$leader") restarted: /readyz $(jget "$WARM_OUT" readyz), 200 after ${ready:-never} s; check before that $(jget "$WARM_OUT" before_ready), after it $(jget "$WARM_OUT" after_ready) ($(jget "$WARM_OUT" after_not_healthy) not healthy, /readyz not 200 $(jget "$WARM_OUT" unready_after) times)")
    out=$(ha_leaders 5 server server-b)
    [[ $(jget "$out" leader) == "$other" ]] || ok=0
    detail+=("leader then: $(jget "$out" leader) ($(jget "$out" values))")

    # (5) A crash: SIGKILL to the new leader; its lease must run out first.
    ha_handover kill "$other"
    local takeover=$HO_S
    [[ $(jget "$HO_OUT" ok) == true && -n $takeover ]] && le "$TAKEOVER_MIN" "$takeover" &&
        le "$takeover" "$TAKEOVER_BOUND" || ok=0
    detail+=("SIGKILL to $(ha_id "$other"): $(ha_id "$leader") leads after ${takeover:-never} s; its check on $(jget "$HO_OUT" polls) polls meanwhile: $(jget "$HO_OUT" answers)")
    ha_restart "$other"
    ((WARM_OK == 1)) || ok=0
    local ready2
    ready2=$(jget "$WARM_OUT" ready_s)
    detail+=("$(ha_id "$other") restarted: /readyz 200 after ${ready2:-never} s, then $(jget "$WARM_OUT" after_ready)")
    out=$(ha_leaders 5 server server-b)
    [[ $(jget "$out" leader) == "$leader" ]] || ok=0

    # (6) Every change reached the receiver exactly once, and nothing else
    # did: the fault and its recovery, in that order.
    sleep 1
    out=$(ha_py events --file "$HOOK_FILE" \
        --expect "node2:healthy>pod_network_down,node2:pod_network_down>healthy")
    [[ $(jget "$out" ok) == true ]] || ok=0
    local ids="no id field"
    [[ $(jget "$out" with_id) == 0 ]] || ids="$(jget "$out" with_id) with an id, repeated ids $(jget "$out" duplicate_ids)"
    detail+=("webhook: $(jget "$out" posts) POSTs $(jget "$out" changes), repeated changes $(jget "$out" duplicate_changes), $ids")

    ha_undeploy || ok=0
    # shellcheck disable=SC2153 # set by restore_and_wait (scenarios.sh), through ha_undeploy
    detail+=("one server again: 200 after ${RECOVERY} s")
    local observed
    observed=$(printf '%s; ' "${detail[@]}")
    record 17 "two server replicas (leader election, lease ${LEASE_DURATION}/${LEASE_RENEW_DEADLINE}/${LEASE_RETRY_PERIOD} s, ready when warm, webhook): leader SIGTERMed, node2's pod link cut and healed while it is down, restarted; then the new leader SIGKILLed and restarted" \
        "both replicas 200 with all 6 agents; after SIGTERM the other answers 200 on every 0.2 s poll and leads within ${HANDOVER_BOUND} s; with one replica, 400 Outdated=[$want] and v2 node2 pod_network_down within ${BOUND} s, a webhook event, and 200 with a recovery event after the heal; a restarted replica's /readyz 503 until warm (before its ${GRACE} s grace), then only the healthy answer; after SIGKILL the other leads in [${TAKEOVER_MIN}, ${TAKEOVER_BOUND}] s; each verdict change POSTed exactly once" \
        "${observed%; }" \
        "hand-over ${handover:-none} s (SIGTERM), ${takeover:-none} s (SIGKILL); fault ${detect:-none} s (event ${event_s:-none} s); ready ${ready:-none} s" \
        "$([[ $ok == 1 ]] && echo PASS || echo FAIL)"
}
