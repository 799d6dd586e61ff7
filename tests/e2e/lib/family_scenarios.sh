# shellcheck shell=bash
# Scenario 18: IPv6 broken on one node's pod network while IPv4 works, on
# the dual-stack topology (E2E_FAMILIES=dual): every agent reports over
# both families, so the server knows each agent's IPv4 and IPv6 paths. The
# router drops node2's pod subnet's IPv6 packets (ip6tables, both ways);
# its pod-network agent's reports then arrive over IPv4 only. The server
# must name node2 `family_down` ("IPv6 pod network down: ...") in
# /api/v2/status within the usual bound, keep the v1 check at 200 (any
# report counts there), leave the other nodes healthy, and say node2 is
# healthy again within the bound once IPv6 passes again. In the other modes
# there is no second family to lose: the scenario is skipped with a note.
#
# Scenario 19: on the mesh (mesh_scenarios.sh), dual-stack, the router drops
# the IPv6 packets between node1's and node2's pods only. Each announces
# both of its addresses, so the server hands every peer over each family;
# within the mesh bound failing_pairs must be exactly node1->node2 and
# node2->node1 on the pod network over IPv6 (kind unreachable), the reason
# saying "over IPv6", no IPv4 pair failing, node1 and node2 mesh_partition,
# node3 healthy, v1 200 throughout; cleared within the bound of the heal.

# shellcheck disable=SC2034 # read by run.sh
FAMILY_SCENARIOS=(18 19)
ALL_HEALTHY_VERDICTS=node1=healthy,node2=healthy,node3=healthy

# server_peers -> "ipv4=N,ipv6=M": the distinct remote addresses of the TCP
# sockets on the server's port in the server namespace (any state, so the
# closed connections of the last minute count too), by family; loopback
# (the observer) left out, IPv4-mapped IPv6 counted as IPv4.
server_peers() {
    in_ns "$NS_SRV" ss -Htan "( sport = :$SERVER_PORT )" 2>/dev/null | "$PY" -c '
import ipaddress, sys
seen = {"ipv4": set(), "ipv6": set()}
for line in sys.stdin:
    f = line.split()
    if len(f) < 5:
        continue
    host = f[4].rsplit(":", 1)[0].strip("[]").split("%")[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        continue
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if not ip.is_loopback and not ip.is_unspecified:
        seen["ipv%d" % ip.version].add(ip)
print(",".join(f"{k}={len(v)}" for k, v in sorted(seen.items())))'
}

# agent_families -> "both=6" (agents whose /api/v2/status `families` has
# both ages: reports came over IPv4 and over IPv6), plus "one=N" for the
# others.
agent_families() {
    in_ns "$NS_SRV" curl -sS --noproxy '*' --max-time 3 \
        "http://127.0.0.1:$SERVER_PORT/api/v2/status" 2>/dev/null |
        "$PY" -c '
import json, sys
d = json.load(sys.stdin)
both = sum(1 for n in d["nodes"] for a in n["agents"]
           if (a.get("families") or {}).get("ipv4") is not None and (a.get("families") or {}).get("ipv6") is not None)
total = sum(len(n["agents"]) for n in d["nodes"])
print(f"both={both}" + (f",one={total - both}" if total > both else ""))' 2>/dev/null || true
}

# family_check_healthy -> "" in ipv4 mode, else a note for scenario 1's
# row; returns 1 when the reports did not travel as the mode says: in dual
# every agent over both families (and 6 peers of each family seen), in ipv6
# the 6 agents' IPv6 addresses as peers and no IPv4 peer.
family_check_healthy() {
    has_v6 || return 0
    local peers fams
    peers=$(server_peers)
    if [[ $FAMILIES == dual ]]; then
        fams=$(agent_families)
        echo "; reports over both families: $fams; server peers $peers"
        [[ $fams == both=6 && $peers == ipv4=6,ipv6=6 ]]
    else
        echo "; server peers $peers (IPv6 only)"
        [[ $peers == ipv4=0,ipv6=6 ]]
    fi
}

# verdict_wait ARGS... -> the observer's JSON; never fails.
verdict_wait() { observe verdict-wait "$@"; }

# "agent=ipv4 As/ipv6 Bs, ..." from the observer's families map.
families_text() {
    "$PY" -c '
import json, sys
f = json.loads(sys.argv[1] or "{}") or {}
print(", ".join(f"{k}: " + ("one family" if not v else
      "/".join(f"{fam} {age:g} s" for fam, age in sorted(v.items()) if age is not None))
      for k, v in sorted(f.items())))' "$1"
}

scenario_18_pod_ipv6() {
    local n=2 title="node2 pod network: IPv6 dropped in the router, IPv4 fine"
    if [[ $FAMILIES != dual ]]; then
        log "scenario 18 needs both families: run it with E2E_FAMILIES=dual (this run is $FAMILIES)"
        record 18 "$title" "-" "not run: needs E2E_FAMILIES=dual (this run: $FAMILIES)" "-" SKIPPED
        return 0
    fi
    local want=node1=healthy,node2=family_down,node3=healthy since out detect ok=1
    # The agents probe the server over each family (the name has both):
    # while IPv6 is dropped node2's IPv6 probe fails and its IPv4 one
    # answers, so the name's `network_probes` entry stays good and node2
    # goes from healthy straight to family_down and back; `probe_failures`
    # on the way (what a probe of the name's first address alone showed)
    # is not allowed.
    # Before: node2's pod-network agent has reported over both families.
    local before
    before=$(verdict_wait --timeout 5 --verdicts "$ALL_HEALTHY_VERDICTS" --node "node$n" --v1-pods 6)
    since=$(now)
    fault_pod_ipv6 $n
    out=$(verdict_wait --since "$since" --timeout 15 --hold 3 --verdicts "$want" --node "node$n" \
        --reason-prefix "IPv6 pod network down" --allow "$ALL_HEALTHY_VERDICTS" --v1-pods 6)
    detect=$(jget "$out" detect_s)
    [[ $(jget "$out" ok) == true ]] && in_bound "$detect" || ok=0
    local drops reason fams v1
    drops=$(rtr_chain6_drops NC-POD-V6)
    ((drops > 0)) || ok=0
    reason=$(jget "$out" node_reason)
    fams=$(families_text "$(jget "$out" families)")
    v1=$(jget "$out" v1)
    in_ns "$NS_SRV" curl -sS --noproxy '*' --max-time 3 "http://127.0.0.1:$SERVER_PORT/api/v2/status" \
        >"$RUN_DIR/status-18.json" 2>/dev/null || true
    # Heal: node2 healthy again, nothing else moved, v1 still 200.
    since=$(now)
    restore_pod_ipv6
    local back
    back=$(verdict_wait --since "$since" --timeout 20 --verdicts "$ALL_HEALTHY_VERDICTS" --node "node$n" \
        --allow "$want" --v1-pods 6)
    RECOVERY=$(jget "$back" detect_s)
    [[ $(jget "$back" ok) == true ]] && [[ -n $RECOVERY ]] && le "$RECOVERY" "$BOUND" || ok=0
    local observed
    observed="v2: $(jget "$out" verdicts)${reason:+, node2: \"$reason\"}; families at detection: $fams"
    observed+="; v1 during the fault: $(jget "$v1" polls) polls, $(jget "$v1" not_healthy) not healthy"
    [[ -z $(jget "$out" reason) ]] || observed+=" ($(jget "$out" reason); seen $(jget "$out" unexpected))"
    observed+="; router dropped $drops IPv6 packets; restored: node2 healthy after ${RECOVERY:-never} s"
    observed+=" (v1 $(jget "$(jget "$back" v1)" not_healthy) not healthy)"
    [[ $(jget "$back" ok) == true ]] || observed+=" ($(jget "$back" reason); seen $(jget "$back" unexpected); last $(jget "$back" verdicts))"
    # (The wait before the fault only has to reach all healthy; what the
    # previous scenario's heal left on the way there does not count.)
    [[ -n $(jget "$before" detect_s) ]] || observed+="; not all healthy before the fault: $(jget "$before" verdicts)"
    record 18 "$title" \
        "v2: node2 family_down, reason \`IPv6 pod network down: ...\` within ${BOUND} s, held 3 s, others healthy; v1 200 throughout; node2 healthy within ${BOUND} s of restore" \
        "$observed" "${detect:-none} s (recovery ${RECOVERY:-none} s)" "$([[ $ok == 1 ]] && echo PASS || echo FAIL)"
}

scenario_19_mesh_ipv6_cut() {
    local title="node1 and node2 pods cut from each other over IPv6 only (router DROP), on the mesh"
    if [[ $FAMILIES != dual ]]; then
        log "scenario 19 needs both families: run it with E2E_FAMILIES=dual (this run is $FAMILIES)"
        record 19 "$title" "-" "not run: needs E2E_FAMILIES=dual (this run: $FAMILIES)" "-" SKIPPED
        return 0
    fi
    local ok=1 want="pod:node1>node2:unreachable@ipv6,pod:node2>node1:unreachable@ipv6"
    local since out healed detect clear drops reason observed
    since=$(now)
    fault_mesh_cut6 1 2
    out=$(mesh_wait --since "$since" --timeout 10 --hold 2 --pairs "$want" \
        --verdicts node1=mesh_partition,node2=mesh_partition,node3=healthy --v1-pods 6)
    detect=$(jget "$out" detect_s)
    save_status 19
    drops=$(rtr_chain6_drops NC-MESH-CUT-V6)
    reason=$(first_of "$(jget "$out" failing)" reason)
    since=$(now)
    restore_mesh_cut6
    healed=$(mesh_wait --since "$since" --timeout 10 --allow "$want" --verdicts "$MESH_HEALTHY" --v1-pods 6)
    clear=$(jget "$healed" detect_s)
    if ! [[ $(jget "$out" ok) == true && $(jget "$healed" ok) == true ]] ||
        ! mesh_detect_in_bound "$detect" || ! mesh_clear_in_bound "$clear" || ((drops == 0)) ||
        [[ $reason != *"over IPv6"* ]]; then
        ok=0
    fi
    observed="$(jget "$out" pairs) after ${detect:-never} s and held 2 s$(unexpected_note "$out")"
    observed+=", v2 $(jget "$out" verdicts), reason \`$reason\`"
    observed+=", v1 on all $(jget "$(jget "$out" v1)" polls) polls $(jget "$(jget "$out" v1)" answers)"
    observed+=", router dropped $drops IPv6 packets; healed: no failing pair after ${clear:-never} s$(unexpected_note "$healed")"
    [[ $(jget "$out" ok) == true ]] || observed+=" ($(jget "$out" reason))"
    record 19 "$title" \
        "failing_pairs exactly node1->node2 and node2->node1 on the pod network over IPv6 (family ipv6, kind unreachable), reason naming IPv6, within ${MESH_BOUND} s, held 2 s; no IPv4 pair; v2 node1, node2 mesh_partition, node3 healthy; v1 200 throughout; cleared within ${MESH_BOUND} s of heal" \
        "$observed" "${detect:-none} s (clear ${clear:-none} s)" "$([[ $ok == 1 ]] && echo PASS || echo FAIL)"
}
