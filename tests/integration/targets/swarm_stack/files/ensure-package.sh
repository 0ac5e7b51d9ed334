#!/bin/sh
# Install a Debian package unless it is installed: ensure-package.sh PACKAGE. Prints "present" or "installed".
set -eu
if dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; then
    echo present
    exit 0
fi
apt-get install -y "$1" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$1" >/dev/null; }
echo installed
