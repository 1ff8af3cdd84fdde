#!/bin/sh
# Prepare this machine (Debian bookworm, as root) for the deployment-file tests: they run
# `systemd-analyze verify` on deploy/*.service, which Debian ships in the `systemd` package.
# Also git-lfs, for the CIRRUS_CLONE_LFS tests (tests/integration/test_clone_lfs.py).
#
# Idempotent: nothing happens when systemd-analyze and git-lfs are already on PATH. Installing the package
# does not need systemd to run as PID 1 (the tests only verify unit files).
#
# Exit status 0 when systemd-analyze and git-lfs can be found afterwards.
set -eu

log() { printf 'setup-ops-tools: %s\n' "$*" >&2; }

if ! command -v systemd-analyze >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        log "systemd-analyze is missing; run this script as root to install it"
        exit 1
    fi
    log "installing systemd (for systemd-analyze)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
    log "systemd-analyze is still missing after installing systemd"
    exit 1
fi
if ! command -v git-lfs >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        log "git-lfs is missing; run this script as root to install it"
        exit 1
    fi
    log "installing git-lfs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends git-lfs >/dev/null
fi
if ! command -v git-lfs >/dev/null 2>&1; then
    log "git-lfs is still missing after installing it"
    exit 1
fi
log "ready: $(systemd-analyze --version | head -n 1); $(git-lfs version)"
