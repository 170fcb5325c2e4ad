#!/bin/sh
# Installs the Debian packages medthink builds and tests with. Idempotent.
# --if-missing: do nothing when every package is already installed.
# --fuzz: the same for what `make fuzz` needs besides (clang and the libFuzzer
# runtime; only `make fuzz` asks for them, so `make test` stays lean).
# --bench: what `make bench` needs besides: nginx with the echo module, the
# fixed-latency teacher of the issues' reference scripts (../shared/bench).
set -e
PKGS="build-essential pkg-config libuv1-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev
libhttp-parser-dev libinih-dev libcmocka-dev libjemalloc-dev zlib1g-dev sqlite3 curl python3 python3-aiohttp valgrind libpng-dev libssl-dev
chromium chromium-driver"
if [ "$1" = "--fuzz" ]; then
  PKGS="clang libclang-rt-14-dev"
  set -- --if-missing
fi
if [ "$1" = "--bench" ]; then
  PKGS="nginx-light libnginx-mod-http-echo linux-perf"
  set -- --if-missing
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  [ "$1" = "--if-missing" ] || echo "deps: all installed"
  exit 0
fi
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
