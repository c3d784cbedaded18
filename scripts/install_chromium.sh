#!/usr/bin/env bash
# Installs Debian's chromium for the headless-browser test of report.html (tests/report/test_report_browser.py).
# The test skips when chromium is absent, so CI runs this first (as root, on Debian); elsewhere it is optional.
# Usage: bash scripts/install_chromium.sh
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: /usr/bin/chromium"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: apt-get not found; install a Chromium build by other means (the test looks for \`chromium\` on PATH)" >&2
    exit 2
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_chromium.sh: needs root (or sudo) to run apt-get" >&2
        exit 2
    fi
fi
export DEBIAN_FRONTEND=noninteractive
# An image with no package lists yet cannot find the package; update only then, to keep the common case quick.
if ! apt-cache show chromium >/dev/null 2>&1; then
    $SUDO apt-get update -q
fi
$SUDO apt-get install -y -q chromium
/usr/bin/chromium --version 2>/dev/null || true
