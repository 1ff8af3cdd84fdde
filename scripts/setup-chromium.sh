#!/bin/sh
# Prepare this machine (Debian bookworm) for the web interface's browser tests
# (tests/integration/web), which drive Debian's headless Chromium through chromedriver.
#
# Idempotent: nothing happens when /usr/bin/chromium and /usr/bin/chromedriver are installed.
# When one is missing, as root: apt-get install chromium chromium-driver (without recommends).
# Browser builds downloaded by Selenium Manager or Playwright do not run here; the tests use
# these two paths only. axe-core, the accessibility checker, is vendored in the tests.
#
# Exit status 0 when both programs can be found afterwards; the tests never skip for lack of
# Chromium, they fail and name this script.
set -eu

log() { printf 'setup-chromium: %s\n' "$*" >&2; }

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if [ "$(id -u)" != 0 ]; then
        log "chromium or chromium-driver is not installed; run this script as root to install them"
        exit 1
    fi
    log "installing chromium and chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        log "apt-get ran but /usr/bin/chromium or /usr/bin/chromedriver is still missing"
        exit 1
    fi
fi
log "ready: $(/usr/bin/chromedriver --version 2>/dev/null | head -n 1 || true)"
