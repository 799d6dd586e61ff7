#!/usr/bin/env bash
# Alert rules and dashboard: the doc/ copies equal the chart's files, the
# rules pass `promtool check rules` and their unit tests
# (doc/prometheus-rules.test.yaml), the chart's PrometheusRule carries exactly
# these rules, and the dashboard is well-formed JSON.
set -euo pipefail
# shellcheck source=hack/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
use_tools
PY="$ROOT/.tools/venv/bin/python"

for pair in "prometheus-rules.yaml" "grafana-dashboard.json"; do
  cmp -s "$ROOT/helm-chart/files/$pair" "$ROOT/doc/$pair" \
    || { diff -u "$ROOT/helm-chart/files/$pair" "$ROOT/doc/$pair" >&2 || true
         die "doc/$pair differs from helm-chart/files/$pair: edit the chart's file and run hack/gen-monitoring.sh"; }
done
echo "check-monitoring: doc/ copies match helm-chart/files/"

promtool check rules "$ROOT/doc/prometheus-rules.yaml" || die "promtool check rules"
(cd "$ROOT/doc" && promtool test rules prometheus-rules.test.yaml) || die "promtool test rules (doc/prometheus-rules.test.yaml)"

work="$(mktemp -d)"
at_exit rm -rf "$work"
helm template netchecker "$ROOT/helm-chart" --namespace netchecker \
  --set metrics.prometheusRule.enabled=true --show-only templates/prometheusrule.yaml >"$work/rule.yaml" \
  || die "helm template of the PrometheusRule"
"$PY" - "$work/rule.yaml" "$ROOT/helm-chart/files/prometheus-rules.yaml" <<'PY' || die "the chart's PrometheusRule differs from helm-chart/files/prometheus-rules.yaml"
import sys, yaml
rendered = yaml.safe_load(open(sys.argv[1]))
plain = yaml.safe_load(open(sys.argv[2]))
if rendered["spec"]["groups"] != plain["groups"]:
    print("PrometheusRule spec.groups != rules file groups", file=sys.stderr)
    sys.exit(1)
print(f"check-monitoring: PrometheusRule (default values) carries the {sum(len(g['rules']) for g in plain['groups'])} rules of the rules file")
PY
# With a custom job regex only the job matcher changes.
helm template netchecker "$ROOT/helm-chart" --namespace netchecker \
  --set metrics.prometheusRule.enabled=true --set metrics.prometheusRule.jobRegex=my-job \
  --show-only templates/prometheusrule.yaml >"$work/rule-job.yaml"
grep -q 'up{job=~"my-job"}' "$work/rule-job.yaml" || die "metrics.prometheusRule.jobRegex does not reach the rules"
! grep -q '\.\*netchecker\.\*' "$work/rule-job.yaml" || die "the default job regex is left in the rules"

"$PY" - "$ROOT/helm-chart/files/grafana-dashboard.json" <<'PY' || die "grafana dashboard JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("uid") and d.get("title"), "dashboard needs uid and title"
ids = [p["id"] for p in d["panels"]]
assert len(ids) == len(set(ids)), "duplicate panel ids"
for p in d["panels"]:
    if p["type"] == "row":
        continue
    assert p.get("targets"), f"panel {p['title']} has no query"
    for t in p["targets"]:
        assert t.get("expr") and t.get("refId"), f"panel {p['title']} has a target without expr/refId"
print(f"check-monitoring: dashboard '{d['title']}' has {len(ids)} panels")
PY
echo "check-monitoring: OK"
