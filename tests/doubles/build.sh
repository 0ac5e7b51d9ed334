#!/usr/bin/env bash
# Builds the OpenFaaS test images offline on the host Docker engine and writes one `docker save` archive
# of all of them (bundle-<hash>.tar) plus manifest.json into DIR ($1, default <repo>/.cache/images):
#   onmetal-test/openfaas-gateway       TEST DOUBLE of ghcr.io/openfaas/gateway:0.18.18
#   onmetal-test/openfaas-basic-auth    TEST DOUBLE of ghcr.io/openfaas/basic-auth-plugin:0.18.18
#   onmetal-test/openfaas-faas-swarm    TEST DOUBLE of ghcr.io/openfaas/faas-swarm:0.9.0
#   onmetal-test/openfaas-queue-worker  TEST DOUBLE of ghcr.io/openfaas/queue-worker:0.11.2
#   onmetal-test/openfaas-nats-streaming TEST DOUBLE of nats-streaming:0.17.0
#   onmetal-test/fn-echo                a test function (upper-casing echo on :8080)
#   onmetal-rig/prometheus              REAL Prometheus (Debian package prometheus)
#   onmetal-rig/alertmanager            REAL Alertmanager (Debian package prometheus-alertmanager)
#   onmetal-rig/registry                REAL registry (Debian package docker-registry), :5000
#   onmetal-test/base                   the Debian base image, for function builds on the nodes
#   onmetal-test/s3                     TEST DOUBLE of docker.io/minio/minio (moto's S3 from PyPI, pinned), :9000
#   onmetal-test/demo-async             the async-worker demo app, built from the product's demo/async-upload
# No registry is contacted: every image starts FROM the local onmetal-rig/base:current (tests/rig/build-images.sh)
# and installs Debian packages. Tags are content hashes (base image id + Dockerfile + sources), ":current" names
# the newest build; an image or archive that already exists for its hash is not rebuilt (re-runs are cheap).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$ROOT/.cache/images}
BASE_REF=${ONMETAL_DOUBLES_BASE:-onmetal-rig/base:current}
export DOCKER_BUILDKIT=0 # the engine has no BuildKit front end here; the classic builder needs no registry

die() { echo "doubles: $*" >&2; exit 1; }
hash() { sha256sum | cut -c1-12; }
have() { docker image inspect "$1" >/dev/null 2>&1; }
# Hash of files below $HERE (paths relative to it), ignoring Python caches.
tree_hash() {
  (cd "$HERE" && find "$@" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum) | hash
}

docker info >/dev/null 2>&1 || die "no Docker engine answers (DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}); start dockerd"
have "$BASE_REF" || die "base image $BASE_REF is missing: run tests/rig/build-images.sh first"
BASE_ID=$(docker image inspect -f '{{.Id}}' "$BASE_REF")
# A tag that cannot move under a running build (the rig may rebuild :current meanwhile).
BASE_PIN="onmetal-test/base:${BASE_ID#sha256:}"
BASE_PIN=${BASE_PIN:0:30}
docker tag "$BASE_ID" "$BASE_PIN"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec 9>"$OUT/.lock"
flock 9

# build_file REPO DOCKERFILE [SOURCE_DIR...]: build images/DOCKERFILE with context $HERE; sets REF.
build_file() {
  local repo=$1 dockerfile=$2 t0=$SECONDS log
  shift 2
  REF="$repo:$( { echo "$BASE_ID"; sha256sum <"$HERE/images/$dockerfile"; [ $# -eq 0 ] || tree_hash "$@"; } | hash)"
  if ! have "$REF"; then
    log=$(mktemp)
    docker build -q --build-arg "BASE=$BASE_PIN" -f "$HERE/images/$dockerfile" -t "$REF" "$HERE" >"$log" 2>&1 ||
      { cat "$log" >&2; rm -f "$log"; die "building $REF from images/$dockerfile failed"; }
    rm -f "$log"
    echo "doubles: built $REF in $((SECONDS - t0))s" >&2
  fi
  docker tag "$REF" "$repo:current"
}

# build_cmd REPO FROM UPSTREAM USER SCRIPT PORT: a double = the shared rootfs + its own ENTRYPOINT (so a stack's
# upstream-style `command:` flags become ignored arguments instead of replacing the program); sets REF.
build_cmd() {
  local repo=$1 from=$2 upstream=$3 user=$4 script=$5 port=$6 dockerfile log
  dockerfile=$(printf '%s\n' \
    "FROM $from" \
    "LABEL org.opencontainers.image.description=\"TEST DOUBLE of $upstream for onmetal.faas tests\" onmetal.test-double-of=\"$upstream\"" \
    "USER $user" \
    "EXPOSE $port" \
    "ENTRYPOINT [\"python3\", \"/opt/onmetal-doubles/$script\"]")
  REF="$repo:$(printf '%s' "$dockerfile" | hash)"
  if ! have "$REF"; then
    log=$(mktemp)
    printf '%s\n' "$dockerfile" | docker build -q -t "$REF" - >"$log" 2>&1 ||
      { cat "$log" >&2; rm -f "$log"; die "building $REF failed"; }
    rm -f "$log"
    echo "doubles: built $REF" >&2
  fi
  docker tag "$REF" "$repo:current"
}

MANIFEST=()
REFS=()
# archive COMPONENT KIND UPSTREAM: records $REF for the bundle archive and the manifest.
# KIND is "double" (stands in for UPSTREAM), "real" (built from Debian, used where UPSTREAM would be) or "function".
archive() {
  local component=$1 kind=$2 upstream=$3
  REFS+=("$REF")
  MANIFEST+=("$(printf '  "%s": {"image": "%s", "archive": "@BUNDLE@", "kind": "%s", "upstream": "%s"}' \
    "$component" "$REF" "$kind" "$upstream")")
}

# One `docker save` of every image: the images share their Debian layers, which a bundle stores once
# (about a quarter of the size of one archive per image), so nodes load it in one go.
bundle() {
  local file tmp
  file="$OUT/bundle-$(printf '%s\n' "${REFS[@]}" | sha256sum | cut -c1-12).tar"
  if [ ! -s "$file" ]; then
    tmp=$(mktemp "$OUT/.bundle.XXXXXX")
    docker save -o "$tmp" "${REFS[@]}" || { rm -f "$tmp"; die "docker save ${REFS[*]} failed"; }
    chmod 0644 "$tmp"
    mv -f "$tmp" "$file"
    find "$OUT" -maxdepth 1 -name "*.tar" ! -name "${file##*/}" -delete
    echo "doubles: wrote $file" >&2
  fi
  BUNDLE=$file
}

T0=$SECONDS
build_file onmetal-test/openfaas-doubles doubles.Dockerfile openfaas .dockerignore
DOUBLES=$REF
build_cmd onmetal-test/openfaas-gateway "$DOUBLES" ghcr.io/openfaas/gateway:0.18.18 nobody gateway.py 8080
archive gateway double ghcr.io/openfaas/gateway:0.18.18
build_cmd onmetal-test/openfaas-basic-auth "$DOUBLES" ghcr.io/openfaas/basic-auth-plugin:0.18.18 nobody basic_auth.py 8080
archive basic-auth-plugin double ghcr.io/openfaas/basic-auth-plugin:0.18.18
# faas-swarm talks to the Docker socket, which is root-only: it runs as root like the upstream image.
build_cmd onmetal-test/openfaas-faas-swarm "$DOUBLES" ghcr.io/openfaas/faas-swarm:0.9.0 root faas_swarm.py 8080
archive faas-swarm double ghcr.io/openfaas/faas-swarm:0.9.0
build_cmd onmetal-test/openfaas-queue-worker "$DOUBLES" ghcr.io/openfaas/queue-worker:0.11.2 nobody queue_worker.py 8080
archive queue-worker double ghcr.io/openfaas/queue-worker:0.11.2
# Root, like the upstream image (FROM scratch, no USER): the file store writes to a fresh named volume (root-owned).
build_cmd onmetal-test/openfaas-nats-streaming "$DOUBLES" nats-streaming:0.17.0 root nats_streaming.py 4222
archive nats double nats-streaming:0.17.0
build_file onmetal-test/fn-echo fn-echo.Dockerfile functions
archive fn-echo function ""
build_file onmetal-rig/prometheus prometheus.Dockerfile
archive prometheus real prom/prometheus
build_file onmetal-rig/alertmanager alertmanager.Dockerfile
archive alertmanager real prom/alertmanager
build_file onmetal-rig/registry registry.Dockerfile
archive registry real registry:2
# Async-worker demo (docs/async-worker.md): the MinIO double and the demo app. The app's Dockerfile lives with the
# product (demo/async-upload, default base debian:bookworm-slim); here it is built FROM the local base.
# Its context is made here: s3/ plus the pinned wheels, downloaded by the host's pip (the build container has no
# route to PyPI through the machine's TLS set-up) and installed offline in the image.
REF="onmetal-test/s3:$( { echo "$BASE_ID"; sha256sum <"$HERE/images/s3.Dockerfile"; tree_hash s3; } | hash)"
if ! have "$REF"; then
  t0=$SECONDS
  ctx=$(mktemp -d)
  log=$(mktemp)
  cp -r "$HERE/s3" "$ctx/s3"
  { python3 -m pip download -q --disable-pip-version-check -d "$ctx/wheels" -r "$HERE/s3/requirements.txt" &&
    docker build -q --build-arg "BASE=$BASE_PIN" -f "$HERE/images/s3.Dockerfile" -t "$REF" "$ctx"; } >"$log" 2>&1 ||
    { grep -v '^WARNING: Location' "$log" >&2; rm -rf "$ctx" "$log"; die "building $REF from images/s3.Dockerfile failed"; }
  rm -rf "$ctx" "$log"
  echo "doubles: built $REF in $((SECONDS - t0))s" >&2
fi
docker tag "$REF" onmetal-test/s3:current
archive s3 double docker.io/minio/minio
DEMO_DIR=$ROOT/demo/async-upload
REF="onmetal-test/demo-async:$( { echo "$BASE_ID"; (cd "$DEMO_DIR" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum); } | hash)"
if ! have "$REF"; then
  t0=$SECONDS
  log=$(mktemp)
  docker build -q --build-arg "BASE_IMAGE=$BASE_PIN" -t "$REF" "$DEMO_DIR" >"$log" 2>&1 ||
    { cat "$log" >&2; rm -f "$log"; die "building $REF from $DEMO_DIR failed"; }
  rm -f "$log"
  echo "doubles: built $REF in $((SECONDS - t0))s" >&2
fi
docker tag "$REF" onmetal-test/demo-async:current
archive demo-async real ""
# The Debian base (pinned tag) goes into the bundle too: the functions role builds function images on a node
# FROM it (functions_base_image), as a site would with its own base image.
REF=$BASE_PIN
archive base real debian:bookworm-slim

bundle
tmp=$(mktemp "$OUT/.manifest.XXXXXX")
{
  echo "{"
  last=$((${#MANIFEST[@]} - 1))
  for i in "${!MANIFEST[@]}"; do
    line=${MANIFEST[$i]//@BUNDLE@/$BUNDLE}
    if [ "$i" -lt "$last" ]; then echo "$line,"; else echo "$line"; fi
  done
  echo "}"
} >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$OUT/manifest.json"
echo "doubles: images and archives ready in $OUT (manifest.json) after $((SECONDS - T0))s" >&2
