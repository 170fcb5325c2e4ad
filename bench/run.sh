#!/bin/sh
# `make bench` runs this after building bin/* and build/bench/*: the four
# benchmarks of docs/PERFORMANCE.md (bench/bench.py does the work and writes
# that file). Loopback only; every process it starts is stopped on exit.
# Environment: BIN, B, BENCH_ONLY, BENCH_TP_N, BENCH_SCALE_N, BENCH_RATE_S,
# BENCH_KEEP (see bench/bench.py).
set -e
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if ! "$PY" -c 'import aiohttp' 2>/dev/null; then
  echo "bench: $PY has no aiohttp (Debian package python3-aiohttp; make deps installs it)" >&2
  exit 1
fi
command -v perf >/dev/null 2>&1 || echo "bench: perf not found (Debian package linux-perf): no profile" >&2
exec "$PY" bench/bench.py
