#!/bin/sh
# systemd-analyze and systemctl verify the rendered units in the tests; PID 1 need not be systemd.
set -eu
if command -v systemd-analyze >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
    echo "systemd-analyze is missing: install Debian's systemd package (apt-get install systemd)" >&2
    exit 1
fi
apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q systemd
