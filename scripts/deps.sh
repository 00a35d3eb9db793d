#!/bin/sh
# Installs the Debian packages slawatch needs, once, when run as root.
#   scripts/deps.sh build   compiler, libraries, redis-server
#   scripts/deps.sh test    plus what the test suite drives for real
#   scripts/deps.sh fuzz    plus clang and its libFuzzer and sanitizer
#                           runtimes (make fuzz)
set -eu
build_pkgs="gcc make pkg-config libevent-dev libhiredis-dev libyaml-dev
libsystemd-dev libcurl4-openssl-dev libssl-dev libjansson-dev redis-server
redis-tools tzdata"
test_pkgs="libcmocka-dev prometheus-redis-exporter prometheus-alertmanager
prometheus systemd curl valgrind groff-base redis-sentinel"
fuzz_pkgs="clang libclang-rt-dev"
case "${1:-build}" in
build) want=$build_pkgs ;;
test) want="$build_pkgs $test_pkgs" ;;
fuzz) want="$build_pkgs $fuzz_pkgs" ;;
*) echo "usage: $0 build|test|fuzz" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "slawatch: missing Debian packages:$missing" >&2
    echo "slawatch: run as root, or: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "slawatch: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/apt/periodic/slawatch-update-stamp
if [ ! -e "$stamp" ] || [ -n "$(find /var/lib/apt/lists -maxdepth 0 -mmin +360 2>/dev/null)" ]; then
    apt-get update -q >&2
    mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2
