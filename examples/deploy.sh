#!/usr/bin/env bash
# Deploys netchecker with kubectl, without Helm, from the plain manifests in
# this folder (rendered from helm-chart/ by hack/gen-examples.sh).
#
#   examples/deploy.sh [apply|delete]
#
# Variables (defaults in brackets):
#   SERVER_IMAGE [netchecker-server]   SERVER_TAG [the chart's appVersion]
#   AGENT_IMAGE  [netchecker-agent]    AGENT_TAG  [the chart's appVersion]
#   NAMESPACE    [netchecker]
#   MANIFESTS    [plain]  folder under examples/ (plain, go-style-flags) or any path
#   KUBECTL      [kubectl] e.g. "kubectl --context prod"
#   DRY_RUN      [0]  1: print the manifests that would be applied, touch nothing
#   WAIT         [1]  1: wait for the rollouts after applying
#
# Example: SERVER_IMAGE=registry.example.com/netchecker-server SERVER_TAG=0.1.0 \
#          AGENT_IMAGE=registry.example.com/netchecker-agent AGENT_TAG=0.1.0 examples/deploy.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

action="${1:-apply}"
case "$action" in apply|delete) ;; *) echo "usage: $0 [apply|delete]" >&2; exit 2 ;; esac

MANIFESTS="${MANIFESTS:-plain}"
[[ -e "$MANIFESTS" ]] || MANIFESTS="$HERE/$MANIFESTS"
[[ -e "$MANIFESTS" ]] || { echo "deploy: no manifests at $MANIFESTS" >&2; exit 1; }

# The tag the manifests were rendered with (the chart's appVersion).
default_tag="$(grep -rhoE 'image: "?netchecker-server:[^"[:space:]]+' "$MANIFESTS" | head -n1 | sed -E 's/.*netchecker-server://')"
SERVER_IMAGE="${SERVER_IMAGE:-netchecker-server}"
SERVER_TAG="${SERVER_TAG:-${default_tag:-latest}}"
AGENT_IMAGE="${AGENT_IMAGE:-netchecker-agent}"
AGENT_TAG="${AGENT_TAG:-${default_tag:-latest}}"
NAMESPACE="${NAMESPACE:-netchecker}"
KUBECTL="${KUBECTL:-kubectl}"
DRY_RUN="${DRY_RUN:-0}"
WAIT="${WAIT:-1}"

[[ "$NAMESPACE" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || { echo "deploy: invalid NAMESPACE '$NAMESPACE'" >&2; exit 1; }

# The manifests, in file order, with images and namespace substituted.
render() {
  local f first=1
  while IFS= read -r f; do
    ((first)) || echo "---"
    first=0
    sed -E \
      -e "s#^([[:space:]]*image: )\"?netchecker-server(:[^\"[:space:]]*|@sha256:[0-9a-f]+)?\"?[[:space:]]*\$#\\1\"${SERVER_IMAGE}:${SERVER_TAG}\"#" \
      -e "s#^([[:space:]]*image: )\"?netchecker-agent(:[^\"[:space:]]*|@sha256:[0-9a-f]+)?\"?[[:space:]]*\$#\\1\"${AGENT_IMAGE}:${AGENT_TAG}\"#" \
      -e "s#^([[:space:]]*namespace: )netchecker[[:space:]]*\$#\\1${NAMESPACE}#" \
      -e "s#^  name: netchecker[[:space:]]*\$#  name: ${NAMESPACE}#" \
      "$f"
  done < <(if [[ -d "$MANIFESTS" ]]; then find "$MANIFESTS" -maxdepth 1 -name '*.yaml'  | LC_ALL=C sort; else echo "$MANIFESTS"; fi)
}

if [[ "$DRY_RUN" == 1 ]]; then
  render
  exit 0
fi

command -v "${KUBECTL%% *}" >/dev/null || { echo "deploy: ${KUBECTL%% *} not found" >&2; exit 1; }

if [[ "$action" == delete ]]; then
  render | $KUBECTL delete --ignore-not-found -f -
  exit 0
fi

echo "deploy: server ${SERVER_IMAGE}:${SERVER_TAG}, agent ${AGENT_IMAGE}:${AGENT_TAG}, namespace ${NAMESPACE}" >&2
render | $KUBECTL apply -f -

if [[ "$WAIT" == 1 ]]; then
  $KUBECTL -n "$NAMESPACE" rollout status deployment/netchecker-server --timeout=180s
  $KUBECTL -n "$NAMESPACE" rollout status daemonset/netchecker-agent --timeout=300s || true
  $KUBECTL -n "$NAMESPACE" rollout status daemonset/netchecker-agent-hostnet --timeout=300s || true
fi

cat >&2 <<MSG
deploy: done. Read the connectivity check (after one report interval):
  $KUBECTL -n $NAMESPACE port-forward service/netchecker-service 8081:8081 &
  curl -s http://127.0.0.1:8081/api/v1/connectivity_check
or through the NodePort: curl -s http://<node-ip>:31081/api/v1/connectivity_check
MSG
