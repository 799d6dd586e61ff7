# shellcheck shell=bash
# Shared by every script under hack/ and tests/e2e/. Source it first:
#   # shellcheck source=hack/lib/common.sh
#   . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
#   ROOT, TARGET_DIR     the repository root; cargo's target directory
#                        ($CARGO_TARGET_DIR, default $ROOT/target)
#   say MSG / die MSG    "PROG: MSG" on stderr; die adds "ERROR: " and exits 1.
#                        PROG is the script's name unless set before sourcing.
#   apt_install PKG      install a Debian package (root only)
#   use_tools            put what hack/install-tools.sh installs on PATH
#   free_port            a free TCP port on 127.0.0.1
#   start_bg LOG CMD...  run CMD in the background, stdout and stderr to LOG;
#                        its PID goes to BG_PID and is stopped on exit
#   wait_ready PID LOG SECS CHECK...
#                        run CHECK every 0.1 s until it succeeds; die with the
#                        tail of LOG if PID exits first or SECS pass
#   start_and_wait_ready LOG URL CMD...
#                        start_bg, then wait_ready until URL answers 2xx
#                        (READY_SECS, default 15)
#   stop_pid PID [SECS]  SIGTERM, wait up to SECS (5) s, then SIGKILL
#   track_pid PID        stop PID on exit too (for PIDs started otherwise)
#   at_exit CMD...       run CMD on exit (last registered first), after every
#                        tracked PID is stopped; EXIT_RC holds the exit status
#                        and a command may change it
#
# Processes are only ever signalled by the PIDs this script started, never
# by name. Ctrl-C and SIGTERM run the same exit path.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$PWD/$TARGET_DIR
PROG=${PROG:-$(basename "$0" .sh)}

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# Non-interactive, refreshing the package lists once if the first try fails.
apt_install() {
  local pkg=$1
  [[ $(id -u) == 0 ]] || die "$pkg is missing and installing it needs root (apt-get install -y $pkg)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "$pkg" >/dev/null 2>&1; then
    say "apt-get update (package lists missing or stale)"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y --no-install-recommends "$pkg" >/dev/null || die "apt-get install $pkg failed"
  fi
}

use_tools() {
  [[ -f $ROOT/.tools/env.sh ]] || die "no .tools/env.sh: run hack/install-tools.sh first"
  # shellcheck source=/dev/null
  . "$ROOT/.tools/env.sh"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_PIDS=()
_AT_EXIT=()
EXIT_RC=0

track_pid() { _PIDS+=("$1"); }

start_bg() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  BG_PID=$!
  track_pid "$BG_PID"
}

wait_ready() {
  local pid=$1 log=$2 secs=$3
  shift 3
  local deadline=$((SECONDS + secs)) why=""
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      why="exited"
    elif ((SECONDS >= deadline)); then
      why="was not ready within $secs s"
    fi
    if [[ -n $why ]]; then
      tail -n 30 "$log" >&2 || true
      die "PID $pid $why ($*); the last lines of $log are above"
    fi
    sleep 0.1
  done
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

start_and_wait_ready() {
  local log=$1 url=$2
  shift 2
  start_bg "$log" "$@"
  wait_ready "$BG_PID" "$log" "${READY_SECS:-15}" http_ok "$url"
}

stop_pid() {
  local pid=$1 secs=${2:-5} p keep=() i
  for p in "${_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  _PIDS=("${keep[@]}")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "PID $pid ignored SIGTERM for $secs s; sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

at_exit() { _AT_EXIT+=("$(printf '%q ' "$@")"); }

_on_exit() {
  EXIT_RC=$?
  # A child killed between fork and exec runs this trap too: not its job.
  [[ $BASHPID == "$$" ]] || exit "$EXIT_RC"
  set +e
  while ((${#_PIDS[@]})); do stop_pid "${_PIDS[-1]}"; done
  local i
  for ((i = ${#_AT_EXIT[@]} - 1; i >= 0; i--)); do eval "${_AT_EXIT[i]}"; done
  exit "$EXIT_RC"
}
trap _on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
