#!/bin/sh
# Build a local stand-in for the Dockerfile's base image, for machines that reach no image
# registry (Debian bookworm, as root, podman set up by scripts/setup-podman.sh).
#
# The image is tagged with the exact name the Dockerfile's FROM uses
# (docker.io/library/python:3.11-slim-bookworm), so `podman build --pull=never` takes it instead
# of pulling. It is NOT the official image: it is a debootstrap minbase tree plus Debian's
# python3 (3.11, at /usr/bin/python3 instead of /usr/local/bin/python), python3-venv,
# python3-pip and tini. The Dockerfile only relies on what both have (`python3 -m venv`).
#
# Idempotent and cached: nothing happens when an image of that name already exists (a real one
# pulled earlier is left alone too). Set CIRRUS_STANDIN_REBUILD=1 to replace it.
#  1. apt-get install debootstrap when missing.
#  2. debootstrap --variant=minbase bookworm, from the mirror apt already uses, with the four
#     packages above; then drop apt caches and lists, locales, documentation and man pages
#     (roughly halves the image).
#  3. `podman import` the tree with the base image's PATH, LANG and CMD.
#
# Exit status 0 when the image exists and runs python3 afterwards.
set -eu

IMAGE="${CIRRUS_BASE_IMAGE:-docker.io/library/python:3.11-slim-bookworm}"
SUITE=bookworm
PACKAGES=python3,python3-venv,python3-pip,tini

log() { printf 'build-base-standin: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "must run as root"
    exit 1
fi
if ! command -v podman >/dev/null 2>&1; then
    log "podman is missing: run scripts/setup-podman.sh first"
    exit 1
fi

if [ "${CIRRUS_STANDIN_REBUILD:-0}" != 1 ] && podman image exists "$IMAGE"; then
    log "ready (cached): $IMAGE"
    exit 0
fi

# The first Debian mirror apt is configured with (deb822 .sources or one-line .list files).
debian_mirror() {
    for file in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$file" ] || continue
        mirror="$(awk '
            /^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }
            /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\/.*\/debian\/?$/) { print $i; exit } }
        ' "$file")"
        if [ -n "$mirror" ]; then
            printf '%s\n' "$mirror"
            return 0
        fi
    done
    printf '%s\n' http://deb.debian.org/debian
}

if ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq debootstrap >/dev/null
fi

MIRROR="$(debian_mirror)"
work="$(mktemp -d /tmp/cirrus-base-standin.XXXXXX)"
trap 'rm -rf "$work"' EXIT INT TERM
root="$work/rootfs"

log "debootstrap $SUITE from $MIRROR with $PACKAGES (about a minute)"
if ! /usr/sbin/debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    log "debootstrap failed"
    exit 1
fi

# What the official slim image does not carry either: package caches, lists, locales, docs.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/lib/apt/lists/* "$root"/usr/share/locale/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log \
    "$root"/var/cache/debconf/*-old "$root"/tmp/*
mkdir -p "$root"/var/lib/apt/lists/partial

log "importing $IMAGE"
tar -C "$root" -c . | podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'LABEL org.cirrus-worker.base-standin=true' \
    --change 'CMD ["python3"]' - "$IMAGE" >/dev/null

if ! podman run --rm --network=none "$IMAGE" python3 -c 'import sys, venv; print(sys.version)' >/dev/null; then
    log "the imported image cannot run python3"
    exit 1
fi
log "ready: $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
