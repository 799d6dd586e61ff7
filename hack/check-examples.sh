#!/usr/bin/env bash
# Fails when examples/ differs from what hack/gen-examples.sh renders from the
# chart now, then validates the example manifests and what examples/deploy.sh
# would apply (images and namespace substituted).
# Usage: hack/check-examples.sh [K8S_VERSION...]   (default: 1.33.0 1.37.0)
set -euo pipefail
# shellcheck source=hack/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
versions=("$@")
((${#versions[@]})) || versions=(1.33.0 1.37.0)

work="$(mktemp -d)"
at_exit rm -rf "$work"

"$ROOT/hack/gen-examples.sh" "$work" 2>/dev/null
for f in plain/00-namespace.yaml plain/10-rbac.yaml plain/20-server.yaml plain/30-agents.yaml go-style-flags/netchecker.yaml; do
  if ! diff -u "$ROOT/examples/$f" "$work/$f" >"$work/diff" 2>&1; then
    cat "$work/diff" >&2
    die "examples/$f is out of date with helm-chart/: run hack/gen-examples.sh and commit the result"
  fi
done
# No stray generated files either.
extra="$(cd "$ROOT/examples" && find plain go-style-flags -name '*.yaml'  | LC_ALL=C sort)"
want="$(cd "$work" && find plain go-style-flags -name '*.yaml' | LC_ALL=C sort)"
[[ "$extra" == "$want" ]] || die "examples/ has manifests the generator does not produce: $(comm -23 <(echo "$extra") <(echo "$want") | tr '\n' ' ')"
echo "check-examples: examples/ matches the chart"

for m in plain go-style-flags; do
  DRY_RUN=1 MANIFESTS="$m" "$ROOT/examples/deploy.sh" > "$work/$m.yaml"
  "$ROOT/hack/validate-manifests.sh" "$work/$m.yaml" "${versions[@]}" >/dev/null 2>"$work/err" \
    || { cat "$work/err" >&2; die "examples/$m does not validate"; }
done
echo "check-examples: examples/plain and examples/go-style-flags validate for ${versions[*]}"

# deploy.sh substitutes images and namespace everywhere.
DRY_RUN=1 SERVER_IMAGE=registry.test/x/netchecker-server SERVER_TAG=9.9.9 \
  AGENT_IMAGE=registry.test/x/netchecker-agent AGENT_TAG=8.8.8 NAMESPACE=nc-test \
  "$ROOT/examples/deploy.sh" > "$work/sub.yaml"
"$ROOT/hack/validate-manifests.sh" "$work/sub.yaml" "${versions[0]}" >/dev/null 2>"$work/err" \
  || { cat "$work/err" >&2; die "deploy.sh output with substitutions does not validate"; }
[[ "$(grep -c 'image: "registry.test/x/netchecker-server:9.9.9"' "$work/sub.yaml")" == 1 ]] || die "deploy.sh did not set the server image"
[[ "$(grep -c 'image: "registry.test/x/netchecker-agent:8.8.8"' "$work/sub.yaml")" == 2 ]] || die "deploy.sh did not set both agent images"
! grep -nE 'image:.*"netchecker-(server|agent):' "$work/sub.yaml" >&2 || die "deploy.sh left a default image"
! grep -nE '^\s*namespace: netchecker\s*$|^  name: netchecker\s*$' "$work/sub.yaml" >&2 || die "deploy.sh left the default namespace"
[[ "$(grep -cE '^\s*namespace: nc-test$' "$work/sub.yaml")" -ge 6 ]] || die "deploy.sh did not set the namespace"
echo "check-examples: deploy.sh substitutes images and namespace"

# The apply and delete paths, with a stand-in kubectl that records its calls.
cat >"$work/kubectl" <<'STUB'
#!/usr/bin/env bash
{ printf 'CALL'; printf ' %s' "$@"; printf '\n'; } >>"$STUB_LOG"
if [[ " $* " == *" -f - "* ]]; then cat >>"$STUB_LOG.stdin"; fi
STUB
chmod +x "$work/kubectl"
export STUB_LOG="$work/calls"
KUBECTL="$work/kubectl --context test" NAMESPACE=nc-apply "$ROOT/examples/deploy.sh" apply 2>/dev/null
grep -qx 'CALL --context test apply -f -' "$STUB_LOG" || die "deploy.sh apply did not run kubectl apply -f -"
for r in deployment/netchecker-server daemonset/netchecker-agent daemonset/netchecker-agent-hostnet; do
  grep -q "^CALL --context test -n nc-apply rollout status $r " "$STUB_LOG" || die "deploy.sh did not wait for $r"
done
cmp -s "$STUB_LOG.stdin" <(DRY_RUN=1 NAMESPACE=nc-apply "$ROOT/examples/deploy.sh") \
  || die "deploy.sh applied something else than its DRY_RUN output"
: >"$STUB_LOG"
KUBECTL="$work/kubectl" "$ROOT/examples/deploy.sh" delete 2>/dev/null
grep -qx 'CALL delete --ignore-not-found -f -' "$STUB_LOG" || die "deploy.sh delete did not run kubectl delete"
echo "check-examples: deploy.sh apply and delete call kubectl as expected"

# What the examples promise: the kubespray layout and the original's flags.
grep -q 'nodePort: 31081' "$ROOT/examples/plain/20-server.yaml" || die "plain example lost NodePort 31081"
grep -q 'name: netchecker-service' "$ROOT/examples/plain/20-server.yaml" || die "plain example lost Service netchecker-service"
for arg in '"-v=5"' '"-alsologtostderr=true"' '"-serverendpoint=netchecker-service:8081"' '"-reportinterval=60"' \
           '"-logtostderr"' '"-kubeproxyinit"' '"-endpoint"' '"0.0.0.0:8081"'; do
  grep -q -- "- $arg" "$ROOT/examples/go-style-flags/netchecker.yaml" || die "go-style example lost argument $arg"
done
echo "check-examples: OK"
