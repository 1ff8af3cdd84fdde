#!/bin/sh
# Prepare this machine (Debian bookworm) for the Tart/Vetu simulator tests, whose simulated VMs
# each run a real OpenSSH server on a loopback address (tests/integration/vm/sshd.py).
#
# Idempotent: nothing happens when /usr/sbin/sshd and ssh-keygen are already installed.
#  1. When /usr/sbin/sshd is missing, as root: apt-get install openssh-server (without
#     recommends). No system-wide sshd is wanted: the tests start their own daemons with their
#     own configuration, so a daemon that the package may have started is left as it is, and
#     this script only warns about it.
#  2. Check that ssh-keygen is present (the simulators make a host key per VM).
#
# Exit status 0 when both programs can be found afterwards; the tests never skip for lack of
# sshd, they fail and name this script.
set -eu

log() { printf 'setup-sshd: %s\n' "$*" >&2; }

if [ ! -x /usr/sbin/sshd ]; then
    if [ "$(id -u)" != 0 ]; then
        log "OpenSSH server is not installed; run this script as root to install it"
        exit 1
    fi
    log "installing openssh-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
    if [ ! -x /usr/sbin/sshd ]; then
        log "apt-get installed openssh-server but /usr/sbin/sshd is still missing"
        exit 1
    fi
fi

if ! command -v ssh-keygen >/dev/null 2>&1; then
    log "/usr/sbin/sshd is installed but ssh-keygen is missing (package openssh-client)"
    exit 1
fi
log "ready: $(/usr/sbin/sshd -V 2>&1 | head -n 1 || true)"
