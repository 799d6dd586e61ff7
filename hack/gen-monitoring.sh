#!/usr/bin/env bash
# Copies the alert rules and the Grafana dashboard from the chart, where they
# are maintained, to doc/, where plain Prometheus and Grafana users take them.
# hack/check-monitoring.sh fails when the copies differ.
set -euo pipefail
# shellcheck source=hack/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cp "$ROOT/helm-chart/files/prometheus-rules.yaml" "$ROOT/doc/prometheus-rules.yaml"
cp "$ROOT/helm-chart/files/grafana-dashboard.json" "$ROOT/doc/grafana-dashboard.json"
say "doc/prometheus-rules.yaml and doc/grafana-dashboard.json updated from helm-chart/files/"
