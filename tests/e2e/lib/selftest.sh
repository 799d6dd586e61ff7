# shellcheck shell=bash
# `run.sh --selftest`: proves the topology and every fault with a stand-in
# HTTP server and curl, without the netchecker binaries. Useful when changing
# the harness itself, and to tell a harness problem from a product problem.

ST_PORT=8081
st_curl() { # NS [curl args...] -> HTTP code, or 000 when it failed
    local ns=$1
    shift
    in_ns "$ns" curl -sS --noproxy '*' --max-time 3 -o /dev/null -w '%{http_code}' "$@" \
        "http://$SERVICE_NAME:$ST_PORT/" 2>/dev/null || true
}
st_big_post() { # NS [BYTES]: a POST of BYTES (4000: several full-size packets)
    head -c "${2:-4000}" /dev/zero | tr '\0' 0 >"$RUN_DIR/big.body"
    st_curl "$1" -X POST --data-binary @"$RUN_DIR/big.body"
}
# NS ADDR [BYTES] -> HTTP code of a GET (a POST of BYTES zeros) to the
# stand-in at ADDR's mesh port, 000 when it failed.
st_peer() {
    local ns=$1 addr=$2 bytes=${3:-} args=()
    if [[ -n $bytes ]]; then
        head -c "$bytes" /dev/zero >"$RUN_DIR/peer.body"
        args=(-H 'Expect:' -X POST --data-binary @"$RUN_DIR/peer.body")
    fi
    in_ns "$ns" curl -sS --noproxy '*' --max-time 2 -o /dev/null -w '%{http_code}' "${args[@]}" \
        "http://$addr:$MESH_PORT/" 2>/dev/null || true
}
ST_FAILS=0
st_expect() { # DESCRIPTION WANT GOT
    if [[ $2 == "$3" ]]; then
        log "selftest ok:   $1 ($3)"
    else
        log "selftest FAIL: $1: want $2, got $3"
        ST_FAILS=$((ST_FAILS + 1))
    fi
}

run_selftest() {
    "$PY" "$E2E_DIR/lib/test_observe.py" || die "selftest: observer unit tests failed"
    if has_v6; then
        selftest_families
        return 0
    fi
    start_proc selftest-http "$NS_SRV" -- "$PY" "$E2E_DIR/lib/selftest_server.py" "$ST_PORT"
    sleep 1
    local n
    for n in "${NODES[@]}"; do
        st_expect "node$n -> service" 200 "$(st_curl "$(node_ns "$n")")"
        st_expect "pod$n -> service" 200 "$(st_curl "$(pod_ns "$n")")"
        st_expect "pod$n big POST" 200 "$(st_big_post "$(pod_ns "$n")")"
    done

    fault_partition_node 2
    st_expect "partition: node2 cut" 000 "$(st_curl "$(node_ns 2)")"
    st_expect "partition: pod2 cut" 000 "$(st_curl "$(pod_ns 2)")"
    st_expect "partition: node1 fine" 200 "$(st_curl "$(node_ns 1)")"
    restore_partition_node
    st_expect "partition restored: pod2" 200 "$(st_curl "$(pod_ns 2)")"

    fault_pod_link_down 3
    st_expect "pod link down: pod3 cut" 000 "$(st_curl "$(pod_ns 3)")"
    st_expect "pod link down: node3 fine" 200 "$(st_curl "$(node_ns 3)")"
    restore_pod_link_down 3
    st_expect "pod link restored: pod3" 200 "$(st_curl "$(pod_ns 3)")"

    fault_mtu_blackhole 1
    st_expect "blackhole: small GET from node1" 200 "$(st_curl "$(node_ns 1)")"
    st_expect "blackhole: small GET from pod1" 200 "$(st_curl "$(pod_ns 1)")"
    st_expect "blackhole: big POST from node1 hangs" 000 "$(st_big_post "$(node_ns 1)")"
    st_expect "blackhole: big POST from pod1 hangs" 000 "$(st_big_post "$(pod_ns 1)")"
    st_expect "blackhole: big POST from pod2 fine" 200 "$(st_big_post "$(pod_ns 2)")"
    # The size of an unpadded report with its token fits under the blackhole.
    st_expect "blackhole: 1.9 KB POST from pod1 fits" 200 "$(st_big_post "$(pod_ns 1)" 1900)"
    log "selftest: ICMP frag-needed suppressed in the router: $(rtr_chain_drops NC-MTU-OUT)"
    restore_mtu_blackhole 1
    st_expect "blackhole restored: big POST from pod1" 200 "$(st_big_post "$(pod_ns 1)")"

    fault_dns 2
    local t0
    t0=$(now)
    st_expect "dns: pod2 cannot resolve" 000 "$(st_curl "$(pod_ns 2)")"
    log "selftest: failed lookup took $(elapsed_since "$t0") s"
    st_expect "dns: node1 resolves" 200 "$(st_curl "$(node_ns 1)")"
    restore_dns 2
    st_expect "dns restored: pod2" 200 "$(st_curl "$(pod_ns 2)")"

    fault_loss 3 0.2 both
    local okc=0
    for _ in $(seq 20); do [[ $(st_big_post "$(pod_ns 3)") == 200 ]] && okc=$((okc + 1)); done
    log "selftest: under 20% loss both ways, $okc/20 big POSTs from pod3 succeeded; router dropped $(rtr_chain_drops NC-LOSS) packets"
    restore_loss

    selftest_mesh_faults

    stop_proc selftest-http
    ((ST_FAILS == 0)) || die "selftest: $ST_FAILS checks failed"
    log "selftest: all checks passed"
}

# The mesh scenarios' faults (between nodes), with a stand-in at the mesh
# port in every node and pod.
selftest_mesh_faults() {
    local n
    for n in "${NODES[@]}"; do
        start_proc "selftest-mesh-pod$n" "$(pod_ns "$n")" -- "$PY" "$E2E_DIR/lib/selftest_server.py" "$MESH_PORT"
        start_proc "selftest-mesh-node$n" "$(node_ns "$n")" -- "$PY" "$E2E_DIR/lib/selftest_server.py" "$MESH_PORT"
    done
    sleep 1
    local pod1 pod2 pod3 node1 node2 node3
    pod1=$(pod_ns 1); pod2=$(pod_ns 2); pod3=$(pod_ns 3)
    node1=$(node_ns 1); node2=$(node_ns 2); node3=$(node_ns 3)
    st_expect "mesh: pod1 -> pod2" 200 "$(st_peer "$pod1" "$(pod_ip 2)")"
    st_expect "mesh: node1 -> node2" 200 "$(st_peer "$node1" "$(node_ip 2)")"

    fault_mesh_cut pod 1 2
    st_expect "mesh cut (pod): pod1 -> pod2 dropped" 000 "$(st_peer "$pod1" "$(pod_ip 2)")"
    st_expect "mesh cut (pod): pod2 -> pod1 dropped" 000 "$(st_peer "$pod2" "$(pod_ip 1)")"
    st_expect "mesh cut (pod): node1 -> node2 fine" 200 "$(st_peer "$node1" "$(node_ip 2)")"
    st_expect "mesh cut (pod): pod1 -> pod3 fine" 200 "$(st_peer "$pod1" "$(pod_ip 3)")"
    st_expect "mesh cut (pod): pod2 -> service fine" 200 "$(st_curl "$pod2")"
    restore_mesh_cut
    st_expect "mesh cut (pod) restored: pod1 -> pod2" 200 "$(st_peer "$pod1" "$(pod_ip 2)")"

    fault_mesh_cut host 1 2
    st_expect "mesh cut (host): node1 -> node2 dropped" 000 "$(st_peer "$node1" "$(node_ip 2)")"
    st_expect "mesh cut (host): pod1 -> pod2 fine" 200 "$(st_peer "$pod1" "$(pod_ip 2)")"
    st_expect "mesh cut (host): node2 -> service fine" 200 "$(st_curl "$node2")"
    restore_mesh_cut
    st_expect "mesh cut (host) restored: node1 -> node2" 200 "$(st_peer "$node1" "$(node_ip 2)")"

    fault_mesh_mtu 1 3
    st_expect "mesh blackhole: GET pod1 -> pod3 passes" 200 "$(st_peer "$pod1" "$(pod_ip 3)")"
    st_expect "mesh blackhole: 1500-byte POST pod1 -> pod3 hangs" 000 "$(st_peer "$pod1" "$(pod_ip 3)" 1500)"
    st_expect "mesh blackhole: 1500-byte POST pod3 -> pod1 hangs" 000 "$(st_peer "$pod3" "$(pod_ip 1)" 1500)"
    st_expect "mesh blackhole: 1500-byte POST node3 -> node1 hangs" 000 "$(st_peer "$node3" "$(node_ip 1)" 1500)"
    st_expect "mesh blackhole: 1500-byte POST pod1 -> pod2 fine" 200 "$(st_peer "$pod1" "$(pod_ip 2)" 1500)"
    st_expect "mesh blackhole: big POST pod1 -> service fine" 200 "$(st_big_post "$pod1")"
    log "selftest: ICMP frag-needed suppressed in the router: $(rtr_chain_drops NC-MESH-MTU-OUT)"
    restore_mesh_mtu 1 3
    st_expect "mesh blackhole restored: 1500-byte POST pod1 -> pod3" 200 "$(st_peer "$pod1" "$(pod_ip 3)" 1500)"

    fault_mesh_egress 2 syn
    st_expect "mesh egress (SYN): pod2 -> pod1 dropped" 000 "$(st_peer "$pod2" "$(pod_ip 1)")"
    st_expect "mesh egress (SYN): node2 -> node3 dropped" 000 "$(st_peer "$node2" "$(node_ip 3)")"
    st_expect "mesh egress (SYN): pod1 -> pod2 fine" 200 "$(st_peer "$pod1" "$(pod_ip 2)")"
    st_expect "mesh egress (SYN): pod2 -> service fine" 200 "$(st_curl "$pod2")"
    restore_mesh_egress

    fault_mesh_egress 2 all
    st_expect "mesh egress (all): pod1 -> pod2 gets no answer" 000 "$(st_peer "$pod1" "$(pod_ip 2)")"
    st_expect "mesh egress (all): node3 -> node2 gets no answer" 000 "$(st_peer "$node3" "$(node_ip 2)")"
    st_expect "mesh egress (all): node2 -> service fine" 200 "$(st_curl "$node2")"
    restore_mesh_egress
    st_expect "mesh egress restored: pod2 -> pod1" 200 "$(st_peer "$pod2" "$(pod_ip 1)")"

    for n in "${NODES[@]}"; do
        stop_proc "selftest-mesh-pod$n"
        stop_proc "selftest-mesh-node$n"
    done
}

# E2E_FAMILIES=dual|ipv6: the faults that scenarios 2, 3 and 18 stage, over
# each family the topology carries, with a stand-in on [::] (the other
# faults act on IPv4 paths only and are checked in the default mode).
st_curl_family() { # NS -4|-6 -> HTTP code of a GET to the service over that family
    local ns=$1 family=$2
    in_ns "$ns" curl "$family" -sS --noproxy '*' --max-time 3 -o /dev/null -w '%{http_code}' \
        "http://$SERVICE_NAME:$ST_PORT/" 2>/dev/null || true
}
selftest_families() {
    start_proc selftest-http "$NS_SRV" -- "$PY" "$E2E_DIR/lib/selftest_server.py" "$ST_PORT" --dual-stack
    sleep 1
    local fams=(-6) f n
    [[ $FAMILIES == dual ]] && fams=(-4 -6)
    for f in "${fams[@]}"; do
        for n in "${NODES[@]}"; do
            st_expect "node$n -> service ($f)" 200 "$(st_curl_family "$(node_ns "$n")" "$f")"
            st_expect "pod$n -> service ($f)" 200 "$(st_curl_family "$(pod_ns "$n")" "$f")"
        done
        fault_partition_node 2
        st_expect "partition: node2 cut ($f)" 000 "$(st_curl_family "$(node_ns 2)" "$f")"
        st_expect "partition: pod2 cut ($f)" 000 "$(st_curl_family "$(pod_ns 2)" "$f")"
        st_expect "partition: node1 fine ($f)" 200 "$(st_curl_family "$(node_ns 1)" "$f")"
        restore_partition_node
        st_expect "partition restored: pod2 ($f)" 200 "$(st_curl_family "$(pod_ns 2)" "$f")"
        fault_pod_link_down 3
        st_expect "pod link down: pod3 cut ($f)" 000 "$(st_curl_family "$(pod_ns 3)" "$f")"
        st_expect "pod link down: node3 fine ($f)" 200 "$(st_curl_family "$(node_ns 3)" "$f")"
        restore_pod_link_down 3
        st_expect "pod link restored: pod3 ($f)" 200 "$(st_curl_family "$(pod_ns 3)" "$f")"
    done
    if [[ $FAMILIES == dual ]]; then
        fault_pod_ipv6 2
        st_expect "pod IPv6 dropped: pod2 over IPv6" 000 "$(st_curl_family "$(pod_ns 2)" -6)"
        st_expect "pod IPv6 dropped: pod2 over IPv4 fine" 200 "$(st_curl_family "$(pod_ns 2)" -4)"
        st_expect "pod IPv6 dropped: node2 over IPv6 fine" 200 "$(st_curl_family "$(node_ns 2)" -6)"
        st_expect "pod IPv6 dropped: pod1 over IPv6 fine" 200 "$(st_curl_family "$(pod_ns 1)" -6)"
        log "selftest: router dropped $(rtr_chain6_drops NC-POD-V6) IPv6 packets of pod2"
        restore_pod_ipv6
        st_expect "pod IPv6 restored: pod2 over IPv6" 200 "$(st_curl_family "$(pod_ns 2)" -6)"
    fi
    stop_proc selftest-http
    ((ST_FAILS == 0)) || die "selftest: $ST_FAILS checks failed"
    log "selftest ($FAMILIES): all checks passed"
}
