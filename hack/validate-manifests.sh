#!/usr/bin/env bash
# Validates rendered Kubernetes manifests offline.
# Usage: hack/validate-manifests.sh FILE.yaml K8S_VERSION...
#
# - Built-in kinds: `kubernetes-validate --strict` (unknown fields are errors)
#   for every version given. kubernetes-validate only warns about kinds it has
#   no schema for; here any such warning is an error.
# - prometheus-operator kinds (monitoring.coreos.com: ServiceMonitor,
#   PrometheusRule), which are CRDs: split out and checked against the CRD
#   schemas of @kubernetes-models/prometheus-operator (types, required fields,
#   enums, patterns; that schema does not reject unknown fields), and the
#   rules of every PrometheusRule go through `promtool check rules`.
set -euo pipefail
# shellcheck source=hack/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
use_tools

file="${1:?usage: $0 FILE.yaml K8S_VERSION...}"
shift
(($#)) || { echo "usage: $0 FILE.yaml K8S_VERSION..." >&2; exit 2; }

work="$(mktemp -d)"
at_exit rm -rf "$work"

# Split: built-in kinds to core.yaml, CRD objects to crds.json, rule specs to rules-N.yaml.
"$ROOT/.tools/venv/bin/python" - "$file" "$work" <<'PY'
import json, sys, yaml
src, out = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(src)) if d]
core = [d for d in docs if not str(d.get("apiVersion", "")).startswith("monitoring.coreos.com/")]
crds = [d for d in docs if str(d.get("apiVersion", "")).startswith("monitoring.coreos.com/")]
with open(f"{out}/core.yaml", "w") as f:
    yaml.safe_dump_all(core, f, sort_keys=False)
json.dump(crds, open(f"{out}/crds.json", "w"))
n = 0
for d in crds:
    if d.get("kind") == "PrometheusRule":
        n += 1
        yaml.safe_dump(d.get("spec", {}), open(f"{out}/rules-{n}.yaml", "w"), sort_keys=False)
print(f"{len(core)} built-in objects, {len(crds)} prometheus-operator objects, {n} rule set(s)", file=sys.stderr)
PY

for v in "$@"; do
  out="$work/kv-$v.log"
  if ! kubernetes-validate --strict -k "$v" "$work/core.yaml" >"$out" 2>&1; then
    cat "$out" >&2
    die "$file does not validate against Kubernetes $v"
  fi
  if grep -q "Couldn't find schema" "$out"; then
    cat "$out" >&2
    die "$file has kinds unknown to Kubernetes $v"
  fi
  echo "validate-manifests: $(grep -c 'passed for resource' "$out") objects valid for Kubernetes $v (strict)"
done

if [[ "$(cat "$work/crds.json")" != "[]" ]]; then
  node "$ROOT/hack/validate-crds.mjs" "$work/crds.json" || die "prometheus-operator objects in $file are invalid"
  for r in "$work"/rules-*.yaml; do
    [[ -e "$r" ]] || continue
    promtool check rules "$r" >/dev/null || {
      promtool check rules "$r" >&2 || true
      die "a PrometheusRule in $file fails promtool check rules"
    }
    echo "validate-manifests: PrometheusRule rules pass promtool check rules"
  done
fi
