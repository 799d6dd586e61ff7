#!/usr/bin/env bash
# End-to-end suite: the real netchecker binaries on a virtual cluster built
# from network namespaces, with faults staged on purpose and the server's
# answer checked for each (see doc/detection.md).
#
# Usage: tests/e2e/run.sh [--selftest | --loss-study] [SCENARIO...]
#   SCENARIO   numbers 1-20 to run, in the order given, or `mesh` for the
#              node-to-node mesh scenarios 11-16 and 20 (default: 1-16,
#              20, 17, in order;
#              17 runs two server replicas and ends with one again; 18, IPv6
#              broken on one node, and 19, IPv6 cut between two nodes' pods
#              on the mesh, need E2E_FAMILIES=dual and are skipped with a
#              note otherwise)
#   --selftest check the topology and the faults with curl and a stand-in
#              HTTP server only (no netchecker binaries needed)
#   --loss-study  measure false Outdated windows under 20% loss at report
#              intervals 1, 2, 5, 10 s (agent binary and a stand-in server)
# Environment:
#   BIN_DIR          where the binaries are (default: target/release, or
#                    $CARGO_TARGET_DIR/release)
#   E2E_RUN_DIR      where logs and results go (default: .e2e/<UTC time>)
#   E2E_STEADY_SECS  length of the steady windows of scenarios 1 and 14 (60)
#   E2E_LOSS_INTERVAL  report interval of node3's agents in scenario 8 (2)
#   E2E_LOSS_SECS    length of scenario 8's 20% loss (300)
#   E2E_STUDY_SECS   length of the loss study (240)
#   E2E_PREFIX       namespace name prefix (default: nc-)
#   E2E_FAMILIES     ipv4 (default: the suite as always), dual (IPv6 beside
#                    IPv4 on every link, the service name resolving to both,
#                    agents reporting over both) or ipv6 (the name resolving
#                    to the server's IPv6 address only); see doc/detection.md
# Needs root (network namespaces, iptables); without it prints SKIPPED and
# exits 0.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=e2e
# shellcheck source=hack/lib/common.sh
source "$E2E_DIR/../../hack/lib/common.sh"
BIN_DIR=${BIN_DIR:-$TARGET_DIR/release}
STATE_DIR=/run/netchecker-e2e

if [[ $(id -u) -ne 0 ]]; then
    cat >&2 <<'BANNER'
################################################################################
##  SKIPPED: end-to-end network scenarios need root (network namespaces,     ##
##  veth pairs, iptables in the router namespace). Run `sudo make e2e`.      ##
################################################################################
BANNER
    exit 0
fi

# shellcheck source=lib/procs.sh
source "$E2E_DIR/lib/procs.sh"
# shellcheck source=lib/topology.sh
source "$E2E_DIR/lib/topology.sh"
# shellcheck source=lib/faults.sh
source "$E2E_DIR/lib/faults.sh"
# shellcheck source=lib/observe.sh
source "$E2E_DIR/lib/observe.sh"
# shellcheck source=lib/cluster.sh
source "$E2E_DIR/lib/cluster.sh"
# shellcheck source=lib/scenarios.sh
source "$E2E_DIR/lib/scenarios.sh"
# shellcheck source=lib/mesh_scenarios.sh
source "$E2E_DIR/lib/mesh_scenarios.sh"
# shellcheck source=lib/ha_scenarios.sh
source "$E2E_DIR/lib/ha_scenarios.sh"
# shellcheck source=lib/family_scenarios.sh
source "$E2E_DIR/lib/family_scenarios.sh"
# shellcheck source=lib/selftest.sh
source "$E2E_DIR/lib/selftest.sh"
# shellcheck source=lib/study.sh
source "$E2E_DIR/lib/study.sh"

MODE=suite
SCENARIOS=()
for arg in "$@"; do
    case $arg in
        --selftest) MODE=selftest ;;
        --loss-study) MODE=loss-study ;;
        [1-9] | 1[0-9] | 20) SCENARIOS+=("$arg") ;;
        mesh) SCENARIOS+=("${MESH_SCENARIOS[@]}") ;;
        -h | --help) sed -n '2,/^# exits 0/p' "$0"; exit 0 ;;
        *) die "unknown argument: $arg" ;;
    esac
done
[[ ${#SCENARIOS[@]} -gt 0 ]] || SCENARIOS=(1 2 3 4 5 6 7 8 9 10 "${MESH_SCENARIOS[@]}" "${HA_SCENARIOS[@]}")

ensure_tools() {
    local -A need=([ip]=iproute2 [iptables]=iptables [ethtool]=ethtool [curl]=curl [ping]=iputils-ping [python3]=python3)
    local cmd
    for cmd in "${!need[@]}"; do
        command -v "$cmd" >/dev/null || { log "installing ${need[$cmd]}"; apt_install "${need[$cmd]}"; }
    done
}

# The binaries are copied into the run directory first: a rebuild in the
# shared target directory during the run must not change what a restarted
# process runs. Their checksums go to the run directory too.
snapshot_binaries() {
    local b
    for b in netchecker-server netchecker-agent netchecker-fake-apiserver; do
        [[ -x $BIN_DIR/$b ]] ||
            die "$BIN_DIR/$b missing: build with 'cargo build --release --workspace --bins' (or set BIN_DIR)"
    done
    mkdir -p "$RUN_DIR/bin"
    for b in netchecker-server netchecker-agent netchecker-fake-apiserver; do
        cp "$BIN_DIR/$b" "$RUN_DIR/bin/$b"
    done
    (cd "$RUN_DIR/bin" && sha256sum netchecker-*) >"$RUN_DIR/binaries.sha256"
    BIN_DIR=$RUN_DIR/bin
}

# Runs on every exit, success or failure (after the library has stopped the
# processes started): delete what we created, and check that nothing of ours
# is left.
teardown() {
    log "teardown"
    stop_all_procs
    delete_topology
    local left
    left=$(our_namespaces)
    if [[ -n $left ]]; then
        log "LEFT BEHIND: namespaces $left"
        EXIT_RC=1
    else
        log "teardown complete: no namespaces of ours in 'ip netns list', /etc/netns entries removed"
    fi
    rm -f "$STATE_DIR/pids" "$STATE_DIR/lock"
    rmdir "$STATE_DIR" 2>/dev/null
}

# A previous run that was killed before its trap ran may have left
# namespaces (and processes in them) behind.
clean_stale() {
    kill_stale_procs
    local left
    left=$(our_namespaces)
    if [[ -n $left ]]; then
        log "removing namespaces left by an earlier run: ${left//$'\n'/ }"
        local ns pids
        for ns in $left; do
            pids=$(ip netns pids "$ns" | paste -sd' ' -)
            [[ -z $pids ]] || log "WARNING: processes not started by this harness remain in $ns: $pids (not touched)"
        done
    fi
    delete_topology
}

run_scenarios() {
    local s remaining=()
    for s in "${SCENARIOS[@]}"; do
        if [[ ${#remaining[@]} -gt 0 ]]; then
            remaining+=("$s")
            continue
        fi
        log "===== scenario $s ====="
        # 1-10 and 17 run without the mesh, 11-16 and 20 with it: switched (server and
        # agents restarted) when the next scenario needs the other.
        local mesh=0
        is_mesh_scenario "$s" && mesh=1
        if ! mesh_deploy "$mesh"; then
            record "$s" "not run" "-" "could not turn the mesh $( ((mesh == 1)) && echo on || echo off) (see the log)" "-" FAIL
            remaining+=(stop)
            continue
        fi
        case $s in
            1) scenario_1_healthy ;;
            2) scenario_2_partition ;;
            3) scenario_3_pod_link ;;
            4) scenario_4_mtu ;;
            5) scenario_5_dns ;;
            6) scenario_6_pods_change ;;
            7) scenario_7_restart ;;
            8) scenario_8_loss ;;
            9) scenario_9_forger ;;
            10) scenario_10_kubespray ;;
            11) scenario_11_mesh_cut ;;
            12) scenario_12_mesh_mtu ;;
            13) scenario_13_mesh_outbound ;;
            14) scenario_14_mesh_soak ;;
            15) scenario_15_mesh_pod_gone ;;
            16) scenario_16_mesh_outbound_all ;;
            17) scenario_17_ha ;;
            18) scenario_18_pod_ipv6 ;;
            19) scenario_19_mesh_ipv6_cut ;;
            20) scenario_20_mesh_loss ;;
        esac
        # Each scenario ends healthy; if not, the next ones cannot be judged.
        local out
        out=$(wait_healthy "$(now)" 10)
        if [[ $(jget "$out" ok) != true ]]; then
            log "not healthy after scenario $s ($(jget "$out" observed)); stopping the suite"
            remaining+=(stop)
        fi
    done
    for s in "${remaining[@]:1}"; do
        record "$s" "not run" "-" "suite stopped: cluster not healthy after an earlier scenario" "-" FAIL
    done
}

main() {
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/lock"
    flock -n 9 || die "another e2e run is in progress (lock $STATE_DIR/lock)"
    ensure_tools
    resolve_python
    RUN_DIR=${E2E_RUN_DIR:-$ROOT/.e2e/$(date -u +%Y%m%dT%H%M%SZ)}
    mkdir -p "$RUN_DIR"
    log "run directory: $RUN_DIR"
    [[ $MODE == selftest ]] || snapshot_binaries
    clean_stale
    at_exit teardown
    local started
    started=$(now)
    setup_topology
    case $MODE in
        selftest) run_selftest; return 0 ;;
        loss-study) run_loss_study; return 0 ;;
    esac

    deploy_netchecker
    local out
    out=$(wait_healthy "$started" 30)
    [[ $(jget "$out" ok) == true ]] || die "cluster never became healthy: $(jget "$out" observed)"
    log "all 6 agents reported: $(jget "$out" observed)"

    run_scenarios

    local total
    total=$(elapsed_since "$started")
    {
        echo "netchecker end-to-end run $(date -u +%FT%TZ), $(uname -r),$(has_v6 && echo " families $FAMILIES,") window ${WINDOW} s" \
            "(factor $FACTOR x interval $INTERVAL s + check interval $CHECK_INTERVAL s), bound ${BOUND} s, total ${total} s"
        echo
        results_table
    } >"$RUN_DIR/results.md"
    echo
    cat "$RUN_DIR/results.md"
    echo
    local passed=$((${#RESULTS[@]} - FAILED - SKIPPED))
    failures_recap
    echo "e2e: $passed passed, $FAILED failed$( ((SKIPPED == 0)) || echo ", $SKIPPED skipped")"
    ((FAILED == 0))
}

main
