#!/bin/sh
# Prepare this machine (Debian bookworm, as root) for the `container` isolation tests with podman.
#
# Idempotent: every step is skipped when its result is already there.
#  1. apt-get install podman, runc and busybox-static when missing.
#  2. Install /etc/containers/containers.conf with runtime runc, cgroup manager cgroupfs and
#     capped default ulimits, when that file is absent. On these machines podman fails without
#     them: crun refuses the hybrid cgroup layout, and root lacks CAP_SYS_RESOURCE so the default
#     nofile/nproc limits cannot be raised. The file is installed system-wide (not passed with
#     CONTAINERS_CONF) so that every podman started later, by the worker or by the tests, uses it
#     without an exported variable. An existing file is left alone, with a warning if it does not
#     select runc.
#  3. Build the image localhost/cirrus-test-busybox:latest (busybox-static only, about 2 MB) with
#     `podman import`, when it is not present.
#
# Exit status 0 when podman can run a container of that image afterwards.
set -eu

IMAGE="${CIRRUS_TEST_IMAGE:-localhost/cirrus-test-busybox:latest}"
CONF=/etc/containers/containers.conf

log() { printf 'setup-podman: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "must run as root"
    exit 1
fi

missing=""
command -v podman >/dev/null 2>&1 || missing="$missing podman"
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || missing="$missing runc"
[ -x /bin/busybox ] || missing="$missing busybox-static"
if [ -n "$missing" ]; then
    log "installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086  # the list is word-split on purpose
    apt-get install -y -qq $missing >/dev/null
fi

if [ ! -e "$CONF" ]; then
    log "writing $CONF"
    mkdir -p /etc/containers
    cat >"$CONF.tmp" <<'CONFEOF'
# Written by cirrus-worker scripts/setup-podman.sh: crun does not work with hybrid cgroups, there
# is no systemd, and root cannot raise rlimits (no CAP_SYS_RESOURCE).
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONFEOF
    mv "$CONF.tmp" "$CONF"
elif ! grep -q '^[[:space:]]*runtime[[:space:]]*=[[:space:]]*"runc"' "$CONF"; then
    log "warning: $CONF exists and does not select runc; podman may fail on this machine"
fi

if ! podman image exists "$IMAGE"; then
    log "building $IMAGE from busybox-static"
    root="$(mktemp -d)"
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc" "$root/root" \
        "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
    chmod 1777 "$root/tmp"
    chmod 0700 "$root/root"
    cp /bin/busybox "$root/bin/busybox"
    # Every applet as a symlink under /bin, so `sh`, `sleep`, `env`, `kill` ... all resolve.
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar -C "$root" -c . | podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
fi

if ! podman run --rm --network=none "$IMAGE" true; then
    log "podman cannot run $IMAGE"
    exit 1
fi
log "ready: podman $(podman version --format '{{.Client.Version}}'), image $IMAGE"
