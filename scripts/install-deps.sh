#!/bin/sh
# Install the Debian packages kagari needs to build, test and benchmark, when missing.
# As root this runs apt-get; otherwise it prints the command to run.
set -eu
pkgs="build-essential pkg-config liblua5.4-dev libcurl4-openssl-dev libcjson-dev
libevent-dev libsqlite3-dev libssl-dev libexpat1-dev libargon2-dev libqrencode-dev openssl sqlite3 python3 wrk clang clang-format curl
chromium"
# The portal's browser tests run Node.js (playwright-core, installed into the build tree by
# make test): Debian's nodejs and npm unless a node and an npm are there already.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    pkgs="$pkgs nodejs npm"
fi
missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "kagari needs these Debian packages:$missing" >&2
    echo "run: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
