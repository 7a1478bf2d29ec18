#!/bin/sh
# Installs wrk (Debian's package) when it is missing, so the deployed
# benchmark (`deals-ledger bench deployed`) never depends on a hand install.
# Run by benchmarks/wrk_load.py:ensure_wrk(); safe to run again (a no-op
# once wrk is on PATH).
set -eu
if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
else
    SUDO="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends wrk || {
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends wrk
}
command -v wrk >/dev/null 2>&1
