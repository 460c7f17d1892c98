#!/usr/bin/env bash
# Builds a headstart image as $IMAGE: the CPU one (docker/Dockerfile) that `make image` builds, or
# the GPU one (DOCKERFILE=docker/Dockerfile.gpu) that `make image-gpu` builds.
#
#   IMAGE               the tag; default: components/container_image.py's IMAGE
#   DOCKERFILE          the Dockerfile, relative to the repository root; default: docker/Dockerfile
#   CONTAINER_ENGINE    docker or podman; default: docker when a Docker engine answers, else podman
#   HEADSTART_PODMAN_CACHE  podman's helper files: containers.conf, the saved base image
#                       (default /var/cache/headstart-podman as root, else ~/.cache/headstart-podman)
#   BUILD_IMAGE_ENV_OUT if set, a file to write ENGINE=... and CONTAINERS_CONF=... to, so a caller
#                       can run the image with the same engine and settings
#
# With podman it sets up what a bare Debian machine lacks, each step skipped when already done:
# installs podman, runc and debootstrap with apt (as root); writes a containers.conf for
# sandboxes (runc, cgroupfs, file events, ulimits within reach); gets python:3.11-slim from its
# saved tar, else the registry, else bootstraps a stand-in from Debian bookworm's packages
# (python3 3.11) and saves it. The build mounts the host's pip cache: wheels built from source
# distributions are reused, and downloads too where the network lets pip cache them (behind a
# proxy that strips caching headers it cannot; downloading every requirement took about 20 s of a
# 3-minute build here, the rest is installing them and committing the 2.5 GB layer).
#
# Exit status 3: no container engine here and none can be installed (not root, or no apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

START=$SECONDS
log() { printf '[build_image +%ss] %s\n' "$((SECONDS - START))" "$*" >&2; }
die() { log "ERROR: $*"; exit "${2:-1}"; }

IMAGE="${IMAGE:-$(sed -n 's/^IMAGE = "\(.*\)"$/\1/p' components/container_image.py)}"
[ -n "$IMAGE" ] || die "no IMAGE given and none found in components/container_image.py"
DOCKERFILE="${DOCKERFILE:-docker/Dockerfile}"
[ -f "$DOCKERFILE" ] || die "no Dockerfile $DOCKERFILE"
BASE_IMAGE=docker.io/library/python:3.11-slim
DEBIAN_SUITE=bookworm  # its python3 is 3.11, as in python:3.11-slim

# Proxy settings, if any, reach the build's RUN steps (pip).
PROXY_ARGS=()
for var in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
    if [ -n "${!var:-}" ]; then PROXY_ARGS+=(--build-arg "$var=${!var}"); fi
done

write_env_out() {
    if [ -n "${BUILD_IMAGE_ENV_OUT:-}" ]; then
        printf 'ENGINE=%s\nCONTAINERS_CONF=%s\n' "$1" "${CONTAINERS_CONF:-}" >"$BUILD_IMAGE_ENV_OUT"
    fi
}

ENGINE="${CONTAINER_ENGINE:-}"
if [ -z "$ENGINE" ]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then ENGINE=docker; else ENGINE=podman; fi
fi
log "image $IMAGE from $DOCKERFILE, engine $ENGINE"

# The image a rebuild replaces is removed, so rebuilds do not pile up untagged gigabytes.
image_id() { "$ENGINE" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true; }
remove_replaced() {
    local new
    new=$(image_id)
    if [ -n "$1" ] && [ "$1" != "$new" ] && "$ENGINE" rmi "$1" >/dev/null 2>&1; then
        log "removed the image it replaces (${1:0:19})"
    fi
}

if [ "$ENGINE" = docker ]; then
    write_env_out docker
    previous=$(image_id)
    docker build "${PROXY_ARGS[@]}" -f "$DOCKERFILE" -t "$IMAGE" .
    remove_replaced "$previous"
    log "built $IMAGE"
    exit 0
fi
[ "$ENGINE" = podman ] || die "CONTAINER_ENGINE must be docker or podman, not $ENGINE"

# --- podman and its helpers -------------------------------------------------------------
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        die "no Docker engine answers and ${missing[*]} missing; install podman (or start Docker) first" 3
    fi
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi

if [ "$(id -u)" = 0 ]; then
    CACHE_DIR="${HEADSTART_PODMAN_CACHE:-/var/cache/headstart-podman}"
else
    CACHE_DIR="${HEADSTART_PODMAN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/headstart-podman}"
fi
mkdir -p "$CACHE_DIR"

if [ -z "${CONTAINERS_CONF:-}" ]; then
    conf="$CACHE_DIR/containers.conf"
    wanted='# Written by docker/build_image.sh: what podman needs in a sandbox without systemd.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"'
    if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$wanted" ]; then
        printf '%s\n' "$wanted" >"$conf"
        log "wrote $conf"
    fi
    export CONTAINERS_CONF="$conf"
fi
write_env_out podman

# --- the base image ---------------------------------------------------------------------
BASE_TAR="$CACHE_DIR/python-3.11-slim.tar"
debian_mirror() {
    local uri
    uri=$(grep -h -o -E 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
          2>/dev/null | head -n 1 | tr -d ' ' || true)
    echo "${uri:-http://deb.debian.org/debian}"
}
bootstrap_base() {
    local root="$CACHE_DIR/rootfs"
    if ! command -v debootstrap >/dev/null; then
        [ "$(id -u)" = 0 ] || die "debootstrap missing and not root"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    [ "$(id -u)" = 0 ] || die "bootstrapping the base image needs root"
    local mirror
    mirror=$(debian_mirror)
    log "bootstrapping a python:3.11-slim stand-in from Debian $DEBIAN_SUITE ($mirror), about a minute"
    rm -rf "$root"
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
        "$DEBIAN_SUITE" "$root" "$mirror" >"$CACHE_DIR/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $CACHE_DIR/debootstrap.log"
    rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
    # The machine's own CAs (a TLS-inspecting proxy's, say), so pip in the build trusts it.
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    fi
    chroot "$root" update-ca-certificates >/dev/null
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
    tar -C "$root" -c . | podman import \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$root"
    podman save -o "$BASE_TAR.tmp" "$BASE_IMAGE" && mv "$BASE_TAR.tmp" "$BASE_TAR"
    log "saved the base image to $BASE_TAR"
}

if podman image exists "$BASE_IMAGE"; then
    log "base $BASE_IMAGE present"
elif [ -f "$BASE_TAR" ] && podman load -q -i "$BASE_TAR" >/dev/null; then
    log "base $BASE_IMAGE loaded from $BASE_TAR"
elif timeout 120 podman pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
    log "base $BASE_IMAGE pulled"
else
    bootstrap_base
fi

# --- the build --------------------------------------------------------------------------
# The host's pip cache, shared: requirements already downloaded here are not fetched again.
PIP_CACHE_HOST="${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pip}"
mkdir -p "$PIP_CACHE_HOST"
log "podman build (pip cache: $PIP_CACHE_HOST); installing the requirements takes minutes, cached layers seconds"
previous=$(image_id)
podman build --pull=never --network=host \
    --volume "$PIP_CACHE_HOST:/root/.cache/pip" --build-arg HEADSTART_PIP_CACHE=on \
    "${PROXY_ARGS[@]}" -f "$DOCKERFILE" -t "$IMAGE" .
remove_replaced "$previous"
log "built $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1/1e9}'))"
