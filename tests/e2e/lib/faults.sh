# shellcheck shell=bash
# Faults staged on the virtual cluster, each with its exact inverse.
# Router rules go into chains of their own (NC-*), so restoring a fault is
# flushing its chain, never guessing which rule to delete.

# iptables inside the router namespace.
rtr_ipt() { in_ns "$NS_RTR" iptables -w "$@"; }
# ip6tables inside the router namespace (dual-stack and IPv6-only runs).
rtr_ip6t() { in_ns "$NS_RTR" ip6tables -w "$@"; }

# The same for ip6tables: a dedicated chain jumped to from BUILTIN.
rtr_chain6_create() {
    local builtin=$1 chain=$2
    rtr_ip6t -N "$chain"
    rtr_ip6t -I "$builtin" 1 -j "$chain"
}
rtr_chain6_remove() {
    local builtin=$1 chain=$2
    rtr_ip6t -D "$builtin" -j "$chain" 2>/dev/null || true
    rtr_ip6t -F "$chain" 2>/dev/null || true
    rtr_ip6t -X "$chain" 2>/dev/null || true
}
rtr_chain6_drops() { rtr_ip6t -L "$1" -n -v -x | awk 'NR>2 {s+=$1} END {print s+0}'; }

# A dedicated chain jumped to from BUILTIN (FORWARD/OUTPUT).
rtr_chain_create() {
    local builtin=$1 chain=$2
    rtr_ipt -N "$chain"
    rtr_ipt -I "$builtin" 1 -j "$chain"
}
rtr_chain_remove() {
    local builtin=$1 chain=$2
    rtr_ipt -D "$builtin" -j "$chain" 2>/dev/null || true
    rtr_ipt -F "$chain" 2>/dev/null || true
    rtr_ipt -X "$chain" 2>/dev/null || true
}
# Packets dropped by the rules of CHAIN so far (with IPv6 in the topology,
# by its IPv4 and IPv6 chains together, when the IPv6 one exists).
rtr_chain_drops() {
    local v4 v6=0
    v4=$(rtr_ipt -L "$1" -n -v -x | awk 'NR>2 {s+=$1} END {print s+0}')
    if has_v6 && rtr_ip6t -L "$1" -n >/dev/null 2>&1; then v6=$(rtr_chain6_drops "$1"); fi
    echo $((v4 + v6))
}

# (2) A node's uplink cut silently: the router drops everything to and from it.
fault_partition_node() {
    local n=$1
    rtr_chain_create FORWARD NC-PARTITION
    rtr_ipt -A NC-PARTITION -i "to-node$n" -j DROP
    rtr_ipt -A NC-PARTITION -o "to-node$n" -j DROP
    if has_v6; then
        rtr_chain6_create FORWARD NC-PARTITION
        rtr_ip6t -A NC-PARTITION -i "to-node$n" -j DROP
        rtr_ip6t -A NC-PARTITION -o "to-node$n" -j DROP
    fi
}
restore_partition_node() {
    rtr_chain_remove FORWARD NC-PARTITION
    if has_v6; then rtr_chain6_remove FORWARD NC-PARTITION; fi
}

# (3) The pod network of a node broken: the node side of the pod veth down.
fault_pod_link_down() { ip -n "$(node_ns "$1")" link set veth-pod down; }
restore_pod_link_down() {
    local n=$1
    ip -n "$(node_ns "$n")" link set veth-pod up
    # The pod's route through the node went with the carrier; put it back.
    ip -n "$(pod_ns "$n")" route replace "$CLUSTER_NET" via "$(node_pod_gw "$n")"
    if has_v6; then
        ip -n "$(pod_ns "$n")" -6 route replace "$CLUSTER_NET6" via "$(node_pod_gw6 "$n")"
    fi
    # Done when the pod reaches its gateway again (neighbour entries that
    # failed while the link was down are re-resolved).
    local i
    for ((i = 0; i < 10; i++)); do
        in_ns "$(pod_ns "$n")" ping -c1 -W1 "$(node_pod_gw "$n")" >/dev/null 2>&1 && break
    done
    ((i < 10)) || { log "pod$n still cannot reach its gateway after the link came back"; return 0; }
    has_v6 || return 0
    # The same over IPv6 (neighbour discovery starts over on the new link).
    for ((i = 0; i < 10; i++)); do
        in_ns "$(pod_ns "$n")" ping -6 -c1 -W1 "$(node_pod_gw6 "$n")" >/dev/null 2>&1 && return 0
    done
    log "pod$n still cannot reach its IPv6 gateway after the link came back"
}

# (18) IPv6 broken for node N's pod network only: the router drops the IPv6
# packets from and to node N's pod subnet; IPv4 is untouched, and so is the
# node's host network over both families.
fault_pod_ipv6() {
    local n=$1
    rtr_chain6_create FORWARD NC-POD-V6
    rtr_ip6t -A NC-POD-V6 -s "$(pod_net6 "$n")" -j DROP
    rtr_ip6t -A NC-POD-V6 -d "$(pod_net6 "$n")" -j DROP
}
restore_pod_ipv6() { rtr_chain6_remove FORWARD NC-POD-V6; }

# (4) MTU blackhole on the path from node N to the server.
# Big packets travel agent -> server (the padded report), so the lowered MTU
# must sit on the server-bound direction: the router sends whatever arrives
# from node N's link to the server over a route with MTU $BLACKHOLE_MTU
# (policy routing on the input interface, so only this node's path is hit).
# Oversized DF packets would make the router answer "fragmentation needed";
# those ICMP messages are dropped (OUTPUT for the router's own, FORWARD for any
# in transit), so the sender never learns: a blackhole. Offloads off on every
# veth of the path, or GSO/GRO super-packets would bypass the per-packet MTU
# check; tcp_mtu_probing stays 0 in the client namespaces.
#
# The path's links run jumbo frames (MTU $PATH_MTU) while the fault holds, so
# that a report that is not padded fits under the blackhole's MTU: every
# report carries the pod's token (about 1.2 KB in its Authorization header),
# which alone takes even an unpadded report past one 1500-byte packet. On a
# jumbo path a request goes out as one packet of its own size: the padded
# report (about 4.9 KB with its token) exceeds $BLACKHOLE_MTU, the unpadded one
# (about 1.9 KB) and a small GET do not. The server's link to the router is part of the
# path; packets from the server to the other nodes stay within their 1500-byte
# MSS, which TCP takes from each peer.
BLACKHOLE_MTU=${BLACKHOLE_MTU:-2500}
PATH_MTU=9000
BLACKHOLE_TABLE=101
offloads_off() { in_ns "$1" ethtool -K "$2" tso off gso off gro off >/dev/null 2>&1 || in_ns "$1" ethtool -K "$2" tso off gso off; }
# The veths of node N's path to the server: "NS DEV" per line.
mtu_path_links() {
    local n=$1
    printf '%s\n' "$(pod_ns "$n") eth0" "$(node_ns "$n") veth-pod" "$(node_ns "$n") eth0" \
        "$NS_RTR to-node$n" "$NS_RTR to-srv" "$NS_SRV eth0"
}
fault_mtu_blackhole() {
    local n=$1 node pod ns dev
    node=$(node_ns "$n")
    pod=$(pod_ns "$n")
    while read -r ns dev; do
        offloads_off "$ns" "$dev"
        ip -n "$ns" link set "$dev" mtu "$PATH_MTU"
    done < <(mtu_path_links "$n")
    for ns in "$node" "$pod"; do
        [[ $(in_ns "$ns" sysctl -n net.ipv4.tcp_mtu_probing) == 0 ]] || die "tcp_mtu_probing is not 0 in $ns"
    done
    # The ICMP drops go in BEFORE the lower MTU: a single frag-needed that
    # escaped in between would teach node N the path MTU (remembered for
    # 10 minutes) and there would be no blackhole at all.
    rtr_chain_create FORWARD NC-MTU-FWD
    rtr_chain_create OUTPUT NC-MTU-OUT
    rtr_ipt -A NC-MTU-FWD -p icmp --icmp-type fragmentation-needed -j DROP
    rtr_ipt -A NC-MTU-OUT -p icmp --icmp-type fragmentation-needed -j DROP
    ip -n "$NS_RTR" route add "$SRV_IP/32" dev to-srv mtu lock "$BLACKHOLE_MTU" table "$BLACKHOLE_TABLE"
    ip -n "$NS_RTR" rule add iif "to-node$n" table "$BLACKHOLE_TABLE" pref 100
}
restore_mtu_blackhole() {
    local n=$1 ns dev
    ip -n "$NS_RTR" rule del iif "to-node$n" table "$BLACKHOLE_TABLE" pref 100 2>/dev/null || true
    ip -n "$NS_RTR" route flush table "$BLACKHOLE_TABLE" 2>/dev/null || true
    rtr_chain_remove FORWARD NC-MTU-FWD
    rtr_chain_remove OUTPUT NC-MTU-OUT
    while read -r ns dev; do
        ip -n "$ns" link set "$dev" mtu 1500
    done < <(mtu_path_links "$n")
}

# (5) DNS broken for a node: the service name removed from the hosts files of
# the node and of its pod.
fault_dns() {
    set_service_entry "$(node_ns "$1")" 0
    set_service_entry "$(pod_ns "$1")" 0
}
restore_dns() {
    set_service_entry "$(node_ns "$1")" 1
    set_service_entry "$(pod_ns "$1")" 1
}

# (8) Random loss on node N's uplink (no netem on this kernel: the statistic
# match drops each packet with probability P). DIRECTION "up" drops only what
# node N sends (its reports and handshakes; what `netem loss` on the node's
# uplink would do), "both" also what is sent to it.
fault_loss() {
    local n=$1 p=$2 direction=${3:-up}
    rtr_chain_create FORWARD NC-LOSS
    add_loss_rule "$n" "$p" "$direction"
}
add_loss_rule() {
    local n=$1 p=$2 direction=$3
    rtr_ipt -A NC-LOSS -i "to-node$n" -m statistic --mode random --probability "$p" -j DROP
    [[ $direction == up ]] ||
        rtr_ipt -A NC-LOSS -o "to-node$n" -m statistic --mode random --probability "$p" -j DROP
}
restore_loss() { rtr_chain_remove FORWARD NC-LOSS; }

# The node-to-node mesh (scenarios 11-13): faults between nodes, on paths
# that do not lead to the server, so every agent keeps reporting.
#
# mesh_addr pod|host N: what node N's agent of that network answers probes
# on, as a router match (its pod's subnet, its node's address).
mesh_addr() { if [[ $1 == pod ]]; then echo "198.19.$2.0/24"; else echo "$(node_ip "$2")/32"; fi; }

# (11) Nodes A and B cut from each other on one network (pod or host): the
# router drops whatever one's agent of that network sends to the other's,
# both ways. Both still reach the server, and the other network between
# them is untouched.
fault_mesh_cut() {
    local net=$1 a=$2 b=$3
    rtr_chain_create FORWARD NC-MESH-CUT
    rtr_ipt -A NC-MESH-CUT -s "$(mesh_addr "$net" "$a")" -d "$(mesh_addr "$net" "$b")" -j DROP
    rtr_ipt -A NC-MESH-CUT -s "$(mesh_addr "$net" "$b")" -d "$(mesh_addr "$net" "$a")" -j DROP
}
restore_mesh_cut() { rtr_chain_remove FORWARD NC-MESH-CUT; }

# (19) Nodes A and B cut from each other over IPv6 on the pod network only
# (dual-stack): the router drops the IPv6 packets between their pods, both
# ways; IPv4 between them and every path to the server are untouched.
fault_mesh_cut6() {
    local a=$1 b=$2
    rtr_chain6_create FORWARD NC-MESH-CUT-V6
    rtr_ip6t -A NC-MESH-CUT-V6 -s "$(pod_ip6 "$a")" -d "$(pod_ip6 "$b")" -j DROP
    rtr_ip6t -A NC-MESH-CUT-V6 -s "$(pod_ip6 "$b")" -d "$(pod_ip6 "$a")" -j DROP
}
restore_mesh_cut6() { rtr_chain6_remove FORWARD NC-MESH-CUT-V6; }

# (12) A path MTU blackhole between nodes A and B only, on both networks:
# in the router, what enters from A's link towards B's pod subnet or node
# address (and from B's towards A's) is routed (policy rules on the input
# interface and destination) over routes with MTU $MESH_BLACKHOLE_MTU, and
# ICMP fragmentation-needed is dropped, as scenario 4 does on node1's path
# to the server. Offloads go off on every veth between the two pods, for
# the same reason as there. The links keep their 1500 bytes: a mesh probe
# carries no token, so a probe padded with the default 1500 zeros fills
# full-size (1500-byte) packets, which the blackhole swallows, while the
# handshake and an unpadded probe (a few hundred bytes) pass. The paths to
# the server are not touched, so the reports, tokens and all, still arrive.
MESH_BLACKHOLE_MTU=${MESH_BLACKHOLE_MTU:-1400}
MESH_MTU_TABLE=102
MESH_MTU_PREF=110
mesh_mtu_links() {
    local n
    for n in "$@"; do
        printf '%s\n' "$(pod_ns "$n") eth0" "$(node_ns "$n") veth-pod" "$(node_ns "$n") eth0" "$NS_RTR to-node$n"
    done
}
# The policy rules, one per line: "IIF DESTINATION".
mesh_mtu_rules() {
    local a=$1 b=$2 net
    for net in pod host; do
        echo "to-node$a $(mesh_addr "$net" "$b")"
        echo "to-node$b $(mesh_addr "$net" "$a")"
    done
}
fault_mesh_mtu() {
    local a=$1 b=$2 ns dev n iif to
    while read -r ns dev; do offloads_off "$ns" "$dev"; done < <(mesh_mtu_links "$a" "$b")
    for n in "$a" "$b"; do
        for ns in "$(node_ns "$n")" "$(pod_ns "$n")"; do
            [[ $(in_ns "$ns" sysctl -n net.ipv4.tcp_mtu_probing) == 0 ]] || die "tcp_mtu_probing is not 0 in $ns"
        done
    done
    # The ICMP drops go in before the lower MTU (see scenario 4).
    rtr_chain_create FORWARD NC-MESH-MTU-FWD
    rtr_chain_create OUTPUT NC-MESH-MTU-OUT
    rtr_ipt -A NC-MESH-MTU-FWD -p icmp --icmp-type fragmentation-needed -j DROP
    rtr_ipt -A NC-MESH-MTU-OUT -p icmp --icmp-type fragmentation-needed -j DROP
    for n in "$a" "$b"; do
        ip -n "$NS_RTR" route add "198.19.$n.0/24" via "$(node_ip "$n")" dev "to-node$n" \
            mtu lock "$MESH_BLACKHOLE_MTU" table "$MESH_MTU_TABLE"
        ip -n "$NS_RTR" route add "$(node_ip "$n")/32" dev "to-node$n" \
            mtu lock "$MESH_BLACKHOLE_MTU" table "$MESH_MTU_TABLE"
    done
    while read -r iif to; do
        ip -n "$NS_RTR" rule add iif "$iif" to "$to" table "$MESH_MTU_TABLE" pref "$MESH_MTU_PREF"
    done < <(mesh_mtu_rules "$a" "$b")
}
restore_mesh_mtu() {
    local a=$1 b=$2 iif to
    while read -r iif to; do
        ip -n "$NS_RTR" rule del iif "$iif" to "$to" table "$MESH_MTU_TABLE" pref "$MESH_MTU_PREF" 2>/dev/null || true
    done < <(mesh_mtu_rules "$a" "$b")
    ip -n "$NS_RTR" route flush table "$MESH_MTU_TABLE" 2>/dev/null || true
    rtr_chain_remove FORWARD NC-MESH-MTU-FWD
    rtr_chain_remove OUTPUT NC-MESH-MTU-OUT
}

# (13, 16) Node N's outbound path to its peers broken, on both networks,
# while it reaches the server. WHAT says what the router drops of what node
# N's pod and node send towards the other nodes' agents:
#   syn  the SYNs only (13): node N opens no connection to any peer, as
#        behind an egress rule (a NetworkPolicy, a host firewall), while its
#        peers' connections to it still work;
#   all  everything (16): node N sends nothing to its peers, not even the
#        answers to their probes, as when its overlay or its route to the
#        other nodes is broken.
fault_mesh_egress() {
    local n=$1 what=$2 m net match=()
    [[ $what == syn ]] && match=(-p tcp --syn)
    rtr_chain_create FORWARD NC-MESH-EGRESS
    for m in "${NODES[@]}"; do
        [[ $m != "$n" ]] || continue
        for net in pod host; do
            rtr_ipt -A NC-MESH-EGRESS -i "to-node$n" -d "$(mesh_addr "$net" "$m")" "${match[@]}" -j DROP
        done
    done
}
restore_mesh_egress() { rtr_chain_remove FORWARD NC-MESH-EGRESS; }
