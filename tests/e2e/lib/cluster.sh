# shellcheck shell=bash
# The netchecker deployment on the virtual cluster: the fake Kubernetes API
# and the server in the server namespace, two agents per node (host network in
# the node namespace, pod network in the pod namespace), as the Helm chart
# deploys them (server Deployment, two agent DaemonSets).

SERVER_PORT=8081
FAKE_API_PORT=${FAKE_API_PORT:-16443}
FAKE_API=http://127.0.0.1:$FAKE_API_PORT
K8S_NAMESPACE=netchecker

# Timing policy under test (server defaults except where set here).
INTERVAL=1         # agent -reportinterval
FACTOR=2           # server --outdated-factor (default)
CHECK_INTERVAL=1   # server --check-interval
GRACE=5            # server --startup-grace (scenario 7 cuts node2 for half of it)
# "One window": an agent is Outdated once its report is older than
# FACTOR x INTERVAL, and the background check notices within CHECK_INTERVAL.
WINDOW=$((FACTOR * INTERVAL + CHECK_INTERVAL))
# Slack on top of the window: the observer polls every 0.2 s, each poll is a
# fresh HTTP request, and staging a fault (ip/iptables) takes ~0.1 s; 1 s
# covers that with room for scheduler jitter on a loaded 2-CPU machine.
SLACK=1
# shellcheck disable=SC2034 # read by scenarios.sh and run.sh
BOUND=$((WINDOW + SLACK))

# The node-to-node mesh (scenarios 11-16 and 20; off for 1-10 and 17). MESH=1: the
# server runs rounds of MESH_ROUND seconds (1, the agents' interval: each
# report hands out a new round) with its other mesh settings at their
# defaults (8 peers, so every node probes both others; 2 s probe timeout,
# cut by the agents to end before their next report), and every agent
# answers probes on MESH_PORT, announcing its pod's address in MY_POD_IP as
# a DaemonSet's fieldRef would. Set by mesh_deploy (mesh_scenarios.sh).
MESH=0
MESH_PORT=8083
MESH_ROUND=$INTERVAL

pod_agent_name() { echo "netchecker-agent-node$1"; }
host_agent_name() { echo "netchecker-agent-hostnet-node$1"; }
ALL_AGENTS=()
for _n in 1 2 3; do ALL_AGENTS+=("$(pod_agent_name "$_n")" "$(host_agent_name "$_n")"); done
unset _n

# The agents' ServiceAccount, as the chart names it; the tokens the server
# verifies are bound to it.
AGENT_SA=netchecker-agent

# Pod JSON as the API would return it. Every pod gets a fresh UID, as a pod
# created by a DaemonSet does: a recreated pod is a new pod, and the tokens
# of the old one do not speak for it.
# On the dual-stack topology a pod has an address of each family, listed in
# `status.podIPs` and `status.hostIPs` as a dual-stack cluster lists them.
pod_json() {
    local name=$1 app=$2 node=$3 ip=$4 ip6=${5:-} uid ips=""
    uid=$(cat /proc/sys/kernel/random/uuid)
    [[ -z $ip6 ]] || ips=',"podIPs":[{"ip":"'$ip'"},{"ip":"'$ip6'"}],"hostIPs":[{"ip":"'$ip'"},{"ip":"'$ip6'"}]'
    cat <<JSON
{"apiVersion":"v1","kind":"Pod",
 "metadata":{"name":"$name","namespace":"$K8S_NAMESPACE","uid":"$uid","labels":{"app":"$app"}},
 "spec":{"nodeName":"$node","serviceAccountName":"$AGENT_SA","containers":[{"name":"netchecker-agent","image":"netchecker-agent:e2e"}]},
 "status":{"phase":"Running","podIP":"$ip","hostIP":"$ip"$ips}}
JSON
}
dual_ip6() { [[ $FAMILIES != dual ]] || echo "$1"; }
pod_agent_json() { pod_json "$(pod_agent_name "$1")" netchecker-agent "node$1" "$(pod_ip "$1")" "$(dual_ip6 "$(pod_ip6 "$1")")"; }
host_agent_json() { pod_json "$(host_agent_name "$1")" netchecker-agent-hostnet "node$1" "$(node_ip "$1")" "$(dual_ip6 "$(node_ip6 "$1")")"; }

# Node JSON as the API would return it: Ready, schedulable, its InternalIP
# the node's address. The server watches nodes while the mesh is on (a
# NotReady, cordoned or deleting node leaves the mesh), and a node missing
# from a synced node list is gone: without these every node would be left
# out of the mesh as `node_gone`.
node_json() {
    local n=$1 uid
    uid=$(cat /proc/sys/kernel/random/uuid)
    cat <<JSON
{"apiVersion":"v1","kind":"Node",
 "metadata":{"name":"node$n","uid":"$uid","labels":{"kubernetes.io/hostname":"node$n","kubernetes.io/os":"linux"}},
 "spec":{},
 "status":{"addresses":[{"type":"InternalIP","address":"$(node_ip "$n")"},{"type":"Hostname","address":"node$n"}],
  "conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}]}}
JSON
}

write_nodes_file() {
    local n sep="" f=$RUN_DIR/nodes.json
    {
        echo "["
        for n in "${NODES[@]}"; do
            printf '%s' "$sep"; node_json "$n"; sep=","
        done
        echo "]"
    } >"$f"
    python3 -m json.tool "$f" >/dev/null || die "generated nodes file is not valid JSON"
}

write_pods_file() {
    local n sep="" f=$RUN_DIR/pods.json
    {
        echo "["
        for n in "${NODES[@]}"; do
            printf '%s' "$sep"; pod_agent_json "$n"; sep=","
            printf '%s' "$sep"; host_agent_json "$n"
        done
        echo "]"
    } >"$f"
    python3 -m json.tool "$f" >/dev/null || die "generated pods file is not valid JSON"
}

srv_curl() { in_ns "$NS_SRV" curl -sS --noproxy '*' --max-time 5 "$@"; }

fake_add_pod() { srv_curl -f -X POST -H 'Content-Type: application/json' --data-binary @- "$FAKE_API/fake/pods" >/dev/null; }
# Deleting a pod also removes its token volume, as the kubelet does.
fake_delete_pod() {
    srv_curl -f -X DELETE "$FAKE_API/fake/pods/$K8S_NAMESPACE/$1" >/dev/null
    rm -rf "$(token_dir "$1")"
}
# A pod being deleted: deletionTimestamp set (the API's first step; the
# kubelet then stops its containers and the pod object goes).
fake_terminate_pod() { srv_curl -f -X POST "$FAKE_API/fake/pods/$K8S_NAMESPACE/$1/terminate" >/dev/null; }
# The fake API's request counters: {"list":N,"watch":N,"total":N,...}.
fake_requests() { srv_curl -f "$FAKE_API/fake/requests"; }

# The projected ServiceAccount token of pod POD, as the kubelet mounts it
# (the chart's `report-token` volume: audience netchecker, bound to the pod).
# Each agent runs in a namespace of its own but shares the file system, so
# every pod's volume is a directory of the run, named after the pod.
token_dir() { echo "$RUN_DIR/kubelet/pods/$1/volumes/report-token"; }
token_file() { echo "$(token_dir "$1")/token"; }

# mint_token POD: a fresh token for POD from the fake API's issuer, written
# the way the kubelet's atomic writer does: into a new timestamped directory,
# `..data` swapped over to it in one rename, `token` -> `..data/token`. An
# agent reading `token` sees the old token or the new one, never half of one.
mint_token() {
    local pod=$1 dir answer token ts old
    dir=$(token_dir "$pod")
    mkdir -p "$dir"
    answer=$(printf '{"namespace":"%s","pod":"%s"}' "$K8S_NAMESPACE" "$pod" |
        srv_curl -f -X POST -H 'Content-Type: application/json' --data-binary @- "$FAKE_API/fake/tokens") ||
        die "the fake API minted no token for pod $pod"
    token=$(jget "$answer" token)
    [[ -n $token ]] || die "no token in the fake API's answer for pod $pod"
    old=$(readlink "$dir/..data" || true)
    ts=..$(date -u +%Y_%m_%d_%H_%M_%S.%N)
    mkdir "$dir/$ts"
    printf '%s' "$token" >"$dir/$ts/token"
    ln -sfn "$ts" "$dir/..data_tmp"
    mv -T "$dir/..data_tmp" "$dir/..data"
    [[ -L $dir/token ]] || ln -s ..data/token "$dir/token"
    [[ -z $old ]] || rm -rf "${dir:?}/$old"
}

fake_api_up() { [[ -s $RUN_DIR/kubeconfig ]] && srv_curl -o /dev/null "$FAKE_API/fake/requests"; }
start_fake_api() {
    write_pods_file
    write_nodes_file
    rm -rf "$RUN_DIR/kubelet"   # new pods, new token volumes
    rm -f "$RUN_DIR/kubeconfig"
    start_proc fake-api "$NS_SRV" -- "$BIN_DIR/netchecker-fake-apiserver" \
        --listen "127.0.0.1:$FAKE_API_PORT" --kubeconfig-out "$RUN_DIR/kubeconfig" --pods "$RUN_DIR/pods.json" \
        --nodes "$RUN_DIR/nodes.json"
    wait_ready "${PIDS[fake-api]}" "$RUN_DIR/fake-api.log" 10 fake_api_up
}

# The server: Go-style single-dash spellings for the flags old manifests use,
# double-dash for the new ones (both must work). Reports are authenticated as
# the Helm chart deploys it: enforce, audience netchecker.
REPORT_AUTH=enforce
# With IPv6 in the topology the server listens on [::] (IPv6 and, mapped,
# IPv4 at once), as the chart runs it with IPv6 in ipFamilies.
SERVER_LISTEN=0.0.0.0:$SERVER_PORT
has_v6 && SERVER_LISTEN="[::]:$SERVER_PORT"
start_server() { start_server_replica server "$SERVER_LISTEN"; }

# start_server_replica NAME ADDR [extra server flags...]: the server as
# start_server runs it, as process NAME listening on ADDR (host:port;
# scenario 17 runs two replicas, each on an address of its own).
start_server_replica() {
    local name=$1 addr=$2
    shift 2
    local mesh_args=()
    ((MESH == 0)) || mesh_args=(--mesh-round "$MESH_ROUND")
    start_proc "$name" "$NS_SRV" "KUBECONFIG=$RUN_DIR/kubeconfig" \
        "NETCHECKER_REPORT_AUTH=$REPORT_AUTH" NETCHECKER_REPORT_AUTH_AUDIENCE=netchecker -- "$BIN_DIR/netchecker-server" \
        -endpoint "$addr" -check-interval "$CHECK_INTERVAL" \
        --startup-grace "$GRACE" --outdated-factor "$FACTOR" "${mesh_args[@]}" "$@" -v 5 -logtostderr
}

wait_server_ready() {
    wait_ready "${PIDS[server]}" "$RUN_DIR/server.log" 15 srv_curl -f -o /dev/null "http://127.0.0.1:$SERVER_PORT/readyz"
}

# Dual-stack: every agent reports to every address of the name (both
# families), as the chart's agents do through the dual-stack headless
# Service; empty otherwise (the suite's agents as they always ran).
FAMILY_POD_ARGS=()
FAMILY_HOST_ARGS=()
if [[ $FAMILIES == dual ]]; then
    FAMILY_POD_ARGS=(--report-to-all-addresses)
    FAMILY_HOST_ARGS=(-report-to-all-addresses=true)
fi

# mesh_ip6 ADDR -> ",ADDR" on the dual-stack topology (the agent announces
# both of its addresses, as MY_POD_IP from `status.podIPs` does; the server
# takes the watched pod's), else "".
mesh_ip6() { [[ $FAMILIES != dual ]] || echo ",$1"; }

# start_agent N pod|host [extra agent flags...]
# Host-network agents get the original's Go-style command line
# (`-serverendpoint=... -reportinterval=...`), pod-network agents the
# double-dash spelling. Each one reads the token of its own pod through
# NETCHECKER_TOKEN_FILE, as the chart's DaemonSets set it; the token is
# minted when the pod's first agent starts (a restarted container keeps its
# pod's volume, a new pod gets a new one).
start_agent() {
    local n=$1 kind=$2
    shift 2
    local pod ns proc mesh_env=() mesh_args=()
    if [[ $kind == pod ]]; then
        pod=$(pod_agent_name "$n"); ns=$(pod_ns "$n"); proc=agent-pod$n
        ((MESH == 0)) || { mesh_env=("MY_POD_IP=$(pod_ip "$n")$(mesh_ip6 "$(pod_ip6 "$n")")"); mesh_args=(--mesh-port "$MESH_PORT"); }
        [[ -e $(token_file "$pod") ]] || mint_token "$pod"
        start_proc "$proc" "$ns" "MY_POD_NAME=$pod" "MY_NODE_NAME=node$n" "${mesh_env[@]}" \
            "NETCHECKER_TOKEN_FILE=$(token_file "$pod")" -- "$BIN_DIR/netchecker-agent" \
            --serverendpoint "$SERVICE_NAME:$SERVER_PORT" --reportinterval "$INTERVAL" "${mesh_args[@]}" "${FAMILY_POD_ARGS[@]}" "$@"
    else
        pod=$(host_agent_name "$n"); ns=$(node_ns "$n"); proc=agent-host$n
        ((MESH == 0)) || { mesh_env=("MY_POD_IP=$(node_ip "$n")$(mesh_ip6 "$(node_ip6 "$n")")"); mesh_args=("-mesh-port=$MESH_PORT"); }
        [[ -e $(token_file "$pod") ]] || mint_token "$pod"
        start_proc "$proc" "$ns" "MY_POD_NAME=$pod" "MY_NODE_NAME=node$n" "${mesh_env[@]}" \
            "NETCHECKER_TOKEN_FILE=$(token_file "$pod")" -- "$BIN_DIR/netchecker-agent" \
            -v=5 -alsologtostderr=true "-serverendpoint=$SERVICE_NAME:$SERVER_PORT" "-reportinterval=$INTERVAL" \
            "${mesh_args[@]}" "${FAMILY_HOST_ARGS[@]}" "$@"
    fi
}
stop_agent() { if [[ $2 == pod ]]; then stop_proc "agent-pod$1"; else stop_proc "agent-host$1"; fi; }

start_all_agents() {
    local n
    for n in "${NODES[@]}"; do
        start_agent "$n" pod
        start_agent "$n" host
    done
}

stop_all_agents() {
    local n
    for n in "${NODES[@]}"; do
        stop_agent "$n" pod
        stop_agent "$n" host
    done
}

deploy_netchecker() {
    start_fake_api
    start_server
    wait_server_ready
    start_all_agents
}
