#!/usr/bin/env bash
# Builds (and optionally pushes) the netchecker-server and netchecker-agent
# images for several platforms with docker buildx. `make images` calls this.
#
# Variables:
#   REGISTRY   image name prefix, e.g. ghcr.io/example (default: none, local names)
#   TAG        image tag (default: the workspace version from Cargo.toml)
#   PLATFORMS  buildx platforms (default: linux/amd64,linux/arm64)
#   PUSH       1 to push to REGISTRY (needed for a multi-platform build, since
#              the classic docker image store holds one platform per tag);
#              0 loads a single-platform build into the local docker (default 0)
#   COMPONENTS which images (default: "server agent")
#   BUILDER    buildx builder to use (default: the current one)
set -euo pipefail
# shellcheck source=hack/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"

VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)"
REGISTRY="${REGISTRY:-}"
TAG="${TAG:-${VERSION:-dev}}"
PLATFORMS="${PLATFORMS:-linux/amd64,linux/arm64}"
PUSH="${PUSH:-0}"
COMPONENTS="${COMPONENTS:-server agent}"
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

command -v docker >/dev/null 2>&1 \
  || die "docker is not installed; images are built where Docker with buildx runs (see doc/deployment.md)"
docker info >/dev/null 2>&1 \
  || die "the docker CLI cannot reach a Docker engine (docker info failed); run this where a Docker daemon is available"
docker buildx version >/dev/null 2>&1 \
  || die "docker buildx is missing (install the buildx plugin)"

if [[ "$PUSH" == 1 ]]; then
  [[ -n "$REGISTRY" ]] || die "PUSH=1 needs REGISTRY (e.g. REGISTRY=ghcr.io/example)"
  output=(--push)
else
  [[ "$PLATFORMS" != *,* ]] \
    || die "a multi-platform build ($PLATFORMS) cannot be loaded into the local image store: set PUSH=1 REGISTRY=... or a single PLATFORMS=linux/amd64"
  output=(--load)
fi

prefix="${REGISTRY:+${REGISTRY%/}/}"
for c in $COMPONENTS; do
  [[ -f "Dockerfile.$c" ]] || die "no Dockerfile.$c"
  image="${prefix}netchecker-$c:$TAG"
  say "building $image for $PLATFORMS"
  docker buildx build ${BUILDER:+--builder "$BUILDER"} \
    --platform "$PLATFORMS" \
    --file "Dockerfile.$c" \
    --build-arg "VERSION=$TAG" \
    --build-arg "REVISION=$REVISION" \
    --build-arg "CREATED=$CREATED" \
    --tag "$image" \
    "${output[@]}" \
    .
  say "done $image"
done
