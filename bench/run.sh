#!/bin/sh
# `make bench` runs this after building bin/* and build/bench/*: the
# benchmarks of docs/PERFORMANCE.md (bench/bench.py does the work and writes
# that file). Loopback only; every process it starts is stopped on exit.
# Environment: BIN, B, BENCH_ONLY (e.g. issue17: only what decides issue 17),
# BENCH_TP_N, BENCH_SCALE_N, BENCH_RATE_S, BENCH_E2E_N, BENCH_E2E_ROUNDS,
# BENCH_E2E_AIO, BENCH_STATUS_N, BENCH_STATUS_S, BENCH_KILL_LEFT, BENCH_KEEP
# (see bench/bench.py).
set -e
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
# aiohttp is needed by the throughput benchmark and the e2e baseline (c) only.
need_aio=1
case ",$BENCH_ONLY," in
,,|*,throughput,*) ;;
*,issue17,*) [ "${BENCH_E2E_AIO:-0}" = 0 ] && need_aio=0 ;;
*,e2e,*) [ "${BENCH_E2E_AIO:-1}" = 0 ] && need_aio=0 ;;
*) need_aio=0 ;;
esac
if [ $need_aio = 1 ] && ! "$PY" -c 'import aiohttp' 2>/dev/null; then
  echo "bench: $PY has no aiohttp (Debian package python3-aiohttp; make deps installs it)" >&2
  exit 1
fi
[ -x "${B:-build}/bench/status_poll" ] ||
  echo "bench: ${B:-build}/bench/status_poll not built: the status benchmark uses the Python poller" >&2
command -v perf >/dev/null 2>&1 || echo "bench: perf not found (Debian package linux-perf): no profile" >&2
exec "$PY" bench/bench.py
