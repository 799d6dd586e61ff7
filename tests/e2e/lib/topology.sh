# shellcheck shell=bash
# The virtual cluster: one server namespace, one router, three nodes each with
# a pod namespace routed behind it (the way a CNI plugin routes pod traffic).
#
#   nc-srv  eth0 198.18.0.2/24 ──── to-srv   198.18.0.1/24 ┐
#                                                           │ nc-rtr (ip_forward=1)
#   nc-nodeN eth0 198.18.N.2/24 ──── to-nodeN 198.18.N.1/24 ┘
#   nc-nodeN veth-pod 198.19.N.1/24 ──── nc-podN eth0 198.19.N.2/24
#
# Only 198.18.0.0/15 is used and routed; no namespace has a default route, so
# nothing can leave towards the real network. Names resolve through
# /etc/netns/NS/hosts (bind-mounted over /etc/hosts by `ip netns exec`); the
# resolv.conf there points at loopback, where nothing answers, so a lookup that
# misses the hosts file fails fast instead of leaking to a real resolver.
#
# E2E_FAMILIES=dual|ipv6 adds IPv6 beside (never instead of) the IPv4 above,
# all of it in 2001:2::/48 (reserved for benchmarking), DAD off:
#
#   nc-srv  eth0 2001:2::2/64 ──── to-srv   2001:2::1/64 ┐
#                                                          │ nc-rtr (ipv6 forwarding=1)
#   nc-nodeN eth0 2001:2:0:N::2/64 ──── to-nodeN 2001:2:0:N::1/64 ┘
#   nc-nodeN veth-pod 2001:2:0:10N::1/64 ──── nc-podN eth0 2001:2:0:10N::2/64
#
# In `dual` the service name resolves to both of the server's addresses, in
# `ipv6` to its IPv6 address only (so every report travels over IPv6; the
# IPv4 addresses stay on the links, unused by the server path). `ipv4`, the
# default, is the suite as it always was: no IPv6 address, route or sysctl.

P=${E2E_PREFIX:-nc-}
NS_SRV=${P}srv
NS_RTR=${P}rtr
NODES=(1 2 3)
node_ns() { echo "${P}node$1"; }
pod_ns() { echo "${P}pod$1"; }
ALL_NS=("$NS_SRV" "$NS_RTR")
for _n in "${NODES[@]}"; do ALL_NS+=("$(node_ns "$_n")" "$(pod_ns "$_n")"); done
unset _n

SRV_IP=198.18.0.2
RTR_SRV_IP=198.18.0.1
rtr_node_ip() { echo "198.18.$1.1"; }
node_ip() { echo "198.18.$1.2"; }
node_pod_gw() { echo "198.19.$1.1"; }
pod_ip() { echo "198.19.$1.2"; }
SERVICE_NAME=netchecker-service
# What the service name resolves to: the server, or (scenario 17) every
# server replica, as a headless Service's name does.
SERVICE_IPS=("$SRV_IP")
CLUSTER_NET=198.18.0.0/15

FAMILIES=${E2E_FAMILIES:-ipv4}
case $FAMILIES in
    ipv4 | dual | ipv6) ;;
    *) echo "e2e: E2E_FAMILIES must be ipv4, dual or ipv6, not '$FAMILIES'" >&2; exit 2 ;;
esac
# has_v6: the topology carries IPv6 too (dual, ipv6).
has_v6() { [[ $FAMILIES != ipv4 ]]; }
SRV_IP6=2001:2::2
RTR_SRV_IP6=2001:2::1
rtr_node_ip6() { echo "2001:2:0:$1::1"; }
node_ip6() { echo "2001:2:0:$1::2"; }
node_pod_gw6() { echo "2001:2:0:10$1::1"; }
pod_ip6() { echo "2001:2:0:10$1::2"; }
pod_net6() { echo "2001:2:0:10$1::/64"; }
CLUSTER_NET6=2001:2::/48
case $FAMILIES in
    dual) SERVICE_IPS=("$SRV_IP" "$SRV_IP6") ;;
    ipv6) SERVICE_IPS=("$SRV_IP6") ;;
esac
# What the name resolves to outside scenario 17 (which changes SERVICE_IPS).
# shellcheck disable=SC2034 # read by ha_scenarios.sh
SERVICE_IPS_USUAL=("${SERVICE_IPS[@]}")

ns_exists() { ip netns list | awk '{print $1}' | grep -qx -- "$1"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Namespaces of ours that currently exist (for the leftover check).
our_namespaces() {
    local ns
    for ns in "${ALL_NS[@]}"; do ns_exists "$ns" && echo "$ns"; done
    return 0
}

# Remove namespaces and /etc/netns entries of ours (exact names only).
delete_topology() {
    local ns
    for ns in "${ALL_NS[@]}"; do
        if ns_exists "$ns"; then
            ip netns del "$ns" || log "could not delete namespace $ns"
        fi
        rm -rf "/etc/netns/$ns"
    done
    rmdir /etc/netns 2>/dev/null || true
}

create_namespace() {
    local ns=$1
    ip netns add "$ns"
    in_ns "$ns" ip link set lo up
    # MTU probing would let TCP repair an MTU blackhole by itself.
    in_ns "$ns" sysctl -qw net.ipv4.tcp_mtu_probing=0
    if has_v6; then
        # No duplicate address detection (addresses usable at once, also
        # the link-local ones of veths created later), and addresses kept
        # when a link goes down (scenario 3), as IPv4 keeps them.
        local conf
        for conf in all default; do
            in_ns "$ns" sysctl -qw "net.ipv6.conf.$conf.accept_dad=0" "net.ipv6.conf.$conf.dad_transmits=0" \
                "net.ipv6.conf.$conf.keep_addr_on_down=1"
        done
    fi
    write_name_files "$ns"
}

# /etc/netns/NS/{hosts,resolv.conf}; WITH_SERVICE=0 leaves the service out.
write_name_files() {
    local ns=$1 with_service=${2:-1}
    mkdir -p "/etc/netns/$ns"
    cat >"/etc/netns/$ns/resolv.conf" <<RESOLV
# netchecker e2e: no reachable name server; names come from hosts only.
nameserver 127.0.0.1
options timeout:1 attempts:1
RESOLV
    set_service_entry "$ns" "$with_service"
}

# Rewrites the hosts file IN PLACE (same inode): running processes see it
# through the bind mount `ip netns exec` made; a rename would leave them on the
# old file.
set_service_entry() {
    local ns=$1 present=$2 f=/etc/netns/$1/hosts
    local content="127.0.0.1 localhost"$'\n' ip
    if [[ $present == 1 ]]; then
        for ip in "${SERVICE_IPS[@]}"; do content+="$ip $SERVICE_NAME"$'\n'; done
    fi
    [[ -f $f ]] || : >"$f"
    printf '%s' "$content" >"$f"
}

# veth pair A (in NS_A, ADDR_A) <-> B (in NS_B, ADDR_B)
link_pair() {
    local ns_a=$1 dev_a=$2 addr_a=$3 ns_b=$4 dev_b=$5 addr_b=$6
    ip -n "$ns_a" link add "$dev_a" type veth peer name "$dev_b" netns "$ns_b"
    ip -n "$ns_a" addr add "$addr_a" dev "$dev_a"
    ip -n "$ns_b" addr add "$addr_b" dev "$dev_b"
    ip -n "$ns_a" link set "$dev_a" up
    ip -n "$ns_b" link set "$dev_b" up
}

# add_v6 NS DEV ADDR/LEN: an IPv6 address, usable at once (no DAD).
add_v6() { ip -n "$1" -6 addr add "$3" dev "$2" nodad; }

setup_server_ns() {
    create_namespace "$NS_SRV"
}

setup_router() {
    create_namespace "$NS_RTR"
    in_ns "$NS_RTR" sysctl -qw net.ipv4.ip_forward=1
    link_pair "$NS_RTR" to-srv "$RTR_SRV_IP/24" "$NS_SRV" eth0 "$SRV_IP/24"
    ip -n "$NS_SRV" route add "$CLUSTER_NET" via "$RTR_SRV_IP"
    if has_v6; then
        in_ns "$NS_RTR" sysctl -qw net.ipv6.conf.all.forwarding=1
        add_v6 "$NS_RTR" to-srv "$RTR_SRV_IP6/64"
        add_v6 "$NS_SRV" eth0 "$SRV_IP6/64"
        ip -n "$NS_SRV" -6 route add "$CLUSTER_NET6" via "$RTR_SRV_IP6"
    fi
}

setup_node() {
    local n=$1 node pod
    node=$(node_ns "$n")
    pod=$(pod_ns "$n")
    create_namespace "$node"
    create_namespace "$pod"
    # Uplink: node <-> router.
    link_pair "$NS_RTR" "to-node$n" "$(rtr_node_ip "$n")/24" "$node" eth0 "$(node_ip "$n")/24"
    ip -n "$node" route add "$CLUSTER_NET" via "$(rtr_node_ip "$n")"
    # Pod network: node routes (forwards) for its pod, like a CNI plugin.
    in_ns "$node" sysctl -qw net.ipv4.ip_forward=1
    link_pair "$node" veth-pod "$(node_pod_gw "$n")/24" "$pod" eth0 "$(pod_ip "$n")/24"
    ip -n "$pod" route add "$CLUSTER_NET" via "$(node_pod_gw "$n")"
    ip -n "$NS_RTR" route add "198.19.$n.0/24" via "$(node_ip "$n")"
    if has_v6; then
        add_v6 "$NS_RTR" "to-node$n" "$(rtr_node_ip6 "$n")/64"
        add_v6 "$node" eth0 "$(node_ip6 "$n")/64"
        ip -n "$node" -6 route add "$CLUSTER_NET6" via "$(rtr_node_ip6 "$n")"
        in_ns "$node" sysctl -qw net.ipv6.conf.all.forwarding=1
        add_v6 "$node" veth-pod "$(node_pod_gw6 "$n")/64"
        add_v6 "$pod" eth0 "$(pod_ip6 "$n")/64"
        ip -n "$pod" -6 route add "$CLUSTER_NET6" via "$(node_pod_gw6 "$n")"
        ip -n "$NS_RTR" -6 route add "$(pod_net6 "$n")" via "$(node_ip6 "$n")"
    fi
}

setup_topology() {
    log "creating namespaces: ${ALL_NS[*]}"
    setup_server_ns
    setup_router
    local n
    for n in "${NODES[@]}"; do setup_node "$n"; done
    verify_topology
}

# Every node and pod reaches the server; nothing has a default route.
verify_topology() {
    local ns
    for ns in "${ALL_NS[@]}"; do
        if ip -n "$ns" route show default | grep -q .; then
            die "namespace $ns has a default route"
        fi
    done
    local n
    for n in "${NODES[@]}"; do
        in_ns "$(node_ns "$n")" ping -c1 -W2 "$SRV_IP" >/dev/null || die "node$n cannot reach the server namespace"
        in_ns "$(pod_ns "$n")" ping -c1 -W2 "$SRV_IP" >/dev/null || die "pod$n cannot reach the server namespace"
        if has_v6; then
            in_ns "$(node_ns "$n")" ping -6 -c1 -W2 "$SRV_IP6" >/dev/null || die "node$n cannot reach the server namespace over IPv6"
            in_ns "$(pod_ns "$n")" ping -6 -c1 -W2 "$SRV_IP6" >/dev/null || die "pod$n cannot reach the server namespace over IPv6"
        fi
        if ! has_v6; then
            in_ns "$(pod_ns "$n")" getent hosts "$SERVICE_NAME" | grep -q "^$SRV_IP " ||
                die "pod$n does not resolve $SERVICE_NAME through its hosts file"
            continue
        fi
        local want got
        want=$(printf '%s\n' "${SERVICE_IPS[@]}" | sort | paste -sd' ' -)
        got=$(in_ns "$(pod_ns "$n")" getent ahosts "$SERVICE_NAME" | awk '{print $1}' | sort -u | paste -sd' ' -)
        [[ $got == "$want" ]] ||
            die "pod$n resolves $SERVICE_NAME to '$got' through its hosts file, not '$want'"
    done
    if has_v6; then
        log "topology up ($FAMILIES): 3 nodes, 3 pods, router, server; all reach $SRV_IP and $SRV_IP6; $SERVICE_NAME is ${SERVICE_IPS[*]}"
    else
        log "topology up: 3 nodes, 3 pods, router, server; all reach $SRV_IP"
    fi
}
