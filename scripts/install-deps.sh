#!/bin/sh
# Install the Debian packages a make target needs, when missing: scripts/install-deps.sh
# [run|test|bench|fuzz] (default run). `make run` installs only what building and running
# the engine and its demo need; `make test`, `make bench` and `make fuzz` add their own.
# As root this runs apt-get; otherwise it prints the command to run.
set -eu
# Build and run: the compiler, the libraries (pkg-config names in the Makefile's PKGS),
# python3 (the build embeds the portal's web files with scripts/embed.py) and openssl for
# the demo's certificates.
run="build-essential pkg-config liblua5.4-dev libcurl4-openssl-dev libcjson-dev
libevent-dev libsqlite3-dev libssl-dev libexpat1-dev libargon2-dev libqrencode-dev python3
openssl"
case "${1:-run}" in
run) pkgs=$run ;;
# make check (scripts/check.py, clang-format), the Python integration suite, and the
# portal's browser tests: chromium, and Node.js (playwright-core, installed into the build
# tree by make test): Debian's nodejs and npm unless a node and an npm are there already.
test)
    pkgs="$run clang-format chromium"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        pkgs="$pkgs nodejs npm"
    fi
    ;;
# The intake throughput figures use wrk; the rest of the benchmark is Python.
bench) pkgs="$run wrk" ;;
# libFuzzer builds need clang.
fuzz) pkgs="$run clang" ;;
*)
    echo "usage: $0 [run|test|bench|fuzz]" >&2
    exit 2
    ;;
esac
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
