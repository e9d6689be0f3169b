#!/usr/bin/env bash
# Installs what MiniWoB++ needs beyond pip: Debian's Chromium and its chromedriver (headless browser).
# The Python side is the extra: pip install -c constraints.txt -e ".[miniwob]".
# Idempotent: does nothing when both are already on PATH. Needs root (or sudo) and apt.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "install-miniwob: $(chromium --version 2>/dev/null | head -n1); $(chromedriver --version | head -n1)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-miniwob: needs root or sudo for apt-get" >&2; exit 1; }
    SUDO="sudo"
fi
command -v apt-get >/dev/null 2>&1 || { echo "install-miniwob: needs apt-get (Debian/Ubuntu)" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
echo "install-miniwob: $(chromium --version 2>/dev/null | head -n1); $(chromedriver --version | head -n1)"
