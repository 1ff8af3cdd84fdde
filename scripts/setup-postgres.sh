#!/bin/sh
# Prepare this machine (Debian bookworm) for the PostgreSQL store tests.
#
# Idempotent: nothing happens when PostgreSQL's server programs are already installed.
#  1. When neither `initdb` on PATH nor /usr/lib/postgresql/*/bin/initdb exists, as root:
#     apt-get install postgresql (Debian's postgresql-15 on bookworm). Before that, when the
#     package is new to this machine, /etc/postgresql-common/createcluster.conf is told not to
#     create the `main` cluster: the tests start a private cluster of their own (see
#     tests/integration/postgres_server.py) and need no system-wide server.
#  2. Check that the `postgres` system user exists when running as root: PostgreSQL refuses to
#     run as root, so the tests start the server as that user.
#
# Exit status 0 when initdb and pg_ctl can be found afterwards; the tests never skip for lack of
# PostgreSQL, they fail and name this script.
set -eu

log() { printf 'setup-postgres: %s\n' "$*" >&2; }

find_initdb() {
    command -v initdb 2>/dev/null && return 0
    for candidate in /usr/lib/postgresql/*/bin/initdb; do
        [ -x "$candidate" ] && { printf '%s\n' "$candidate"; return 0; }
    done
    return 1
}

if ! initdb="$(find_initdb)"; then
    if [ "$(id -u)" != 0 ]; then
        log "PostgreSQL is not installed; run this script as root to install it"
        exit 1
    fi
    log "installing postgresql"
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        mkdir -p /etc/postgresql-common
        printf '# Written by cirrus-worker scripts/setup-postgres.sh: tests run private clusters.\ncreate_main_cluster = false\n' \
            >/etc/postgresql-common/createcluster.conf
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # confold: keep the createcluster.conf written above when the package brings its own.
    apt-get install -y -qq -o Dpkg::Options::=--force-confold postgresql >/dev/null
    if ! initdb="$(find_initdb)"; then
        log "apt-get installed postgresql but initdb is still missing"
        exit 1
    fi
fi

pg_ctl="$(dirname "$initdb")/pg_ctl"
if [ ! -x "$pg_ctl" ] && ! command -v pg_ctl >/dev/null 2>&1; then
    log "initdb is at $initdb but pg_ctl is missing"
    exit 1
fi
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    log "the postgres system user is missing (the server cannot run as root)"
    exit 1
fi
log "ready: $("$initdb" --version)"
