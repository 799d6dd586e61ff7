#!/usr/bin/env bash
# Everything about deployment that can be checked without a cluster or a
# Docker engine, in order, stopping at the first failure:
#   tools, shellcheck, helm lint, chart behaviour, manifest validation for
#   Kubernetes 1.33.0 and 1.37.0, examples drift, hadolint, alert rules and
#   their unit tests, dashboard/rule metric names against a live server, and
#   the manifests' command lines run with the real binaries.
# `make test-deploy` (and `make test`) run this. Tools go to .tools/.
#
# Variables: K8S_VERSIONS (default "1.33.0 1.37.0"),
#            SKIP_BINARIES=1 skips the checks that build and run the binaries,
#            NETCHECKER_BIN_DIR=DIR runs them with the netchecker-server,
#            netchecker-agent and netchecker-fake-apiserver in DIR instead of
#            building (e.g. release binaries).
set -euo pipefail
# shellcheck source=hack/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"
read -r -a K8S_VERSIONS <<<"${K8S_VERSIONS:-1.33.0 1.37.0}"

step_no=0
current=""
work="$(mktemp -d)"
at_exit rm -rf "$work"
report_failure() {
  ((EXIT_RC == 0)) && return
  printf '\ntest-deploy: FAILED at step %d: %s (exit %d)\n' "$step_no" "$current" "$EXIT_RC" >&2
  printf 'test-deploy: %d passed, 1 failed\n' "$((step_no - 1))" >&2
}
at_exit report_failure
step() {
  step_no=$((step_no + 1))
  current="$*"
  printf '\n== test-deploy %d: %s\n' "$step_no" "$*" >&2
}

step "install tools into .tools/"
hack/install-tools.sh
use_tools

step "shellcheck every shell script (hack/, tests/, examples/)"
mapfile -t scripts < <(find hack tests examples -name node_modules -prune -o -name '*.sh' -print | LC_ALL=C sort)
shellcheck -x "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean" >&2

step "helm lint --strict (default values, then every ci/*-values.yaml)"
helm lint --strict helm-chart
for v in helm-chart/ci/*-values.yaml; do
  helm lint --strict helm-chart -f "$v"
done

step "chart behaviour (hack/check-chart.py)"
.tools/venv/bin/python hack/check-chart.py

step "render and validate manifests for Kubernetes ${K8S_VERSIONS[*]}"
helm template netchecker helm-chart --namespace netchecker >"$work/defaults.yaml"
echo "defaults:" >&2
hack/validate-manifests.sh "$work/defaults.yaml" "${K8S_VERSIONS[@]}"
for v in helm-chart/ci/*-values.yaml; do
  name="$(basename "$v" .yaml)"
  helm template netchecker helm-chart --namespace netchecker -f "$v" >"$work/$name.yaml"
  echo "$v:" >&2
  hack/validate-manifests.sh "$work/$name.yaml" "${K8S_VERSIONS[@]}"
done

step "examples/ generated from the chart, valid, deploy.sh substitutions"
hack/check-examples.sh "${K8S_VERSIONS[@]}"

step "hadolint Dockerfile.server Dockerfile.agent"
hadolint Dockerfile.server Dockerfile.agent
echo "hadolint: clean" >&2

step "Cargo.lock is current (the images build with cargo build --locked)"
cargo metadata --locked --format-version 1 >/dev/null \
  || die "Cargo.lock does not match the workspace: run cargo build and commit Cargo.lock"

step "alert rules: doc/ copies, promtool check rules, promtool test rules, PrometheusRule"
hack/check-monitoring.sh

if [[ "${SKIP_BINARIES:-0}" == 1 ]]; then
  step "checks against the real binaries: SKIPPED (SKIP_BINARIES=1)"
else
  bin_dir="${NETCHECKER_BIN_DIR:-}"
  if [[ -n "$bin_dir" ]]; then
    step "binaries from NETCHECKER_BIN_DIR=$bin_dir (no build)"
    for b in netchecker-server netchecker-agent netchecker-fake-apiserver; do
      [[ -x "$bin_dir/$b" ]] || die "NETCHECKER_BIN_DIR: no $bin_dir/$b"
    done
  else
    step "cargo build -p netchecker-server -p netchecker-agent -p netchecker-fake-apiserver"
    cargo build --quiet -p netchecker-server -p netchecker-agent -p netchecker-fake-apiserver
    bin_dir="$TARGET_DIR/debug"
  fi

  step "dashboard and rule metric names against a live server, promtool check metrics"
  NETCHECKER_SERVER_BIN="$bin_dir/netchecker-server" hack/check-dashboard-metrics.sh

  step "manifest command lines run the real binaries (fake Kubernetes API, loopback)"
  NETCHECKER_BIN_DIR="$bin_dir" .tools/venv/bin/python hack/check-manifest-args.py
fi

printf '\ntest-deploy: all %d steps passed\n' "$step_no" >&2
printf 'test-deploy: %d passed, 0 failed\n' "$step_no" >&2
