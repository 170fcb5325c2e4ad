#!/bin/sh
# bench/bench.py --self-check: the benchmark's report code (the issue 17
# targets table, partial runs keeping the sections they did not run, the
# load line) on made-up results, and its Python status poller against a tiny
# server on a unix socket. No daemon; a few seconds.
. "$(dirname "$0")/lib.inc"

out=$(cd "$top" && B="$T/b" python3 bench/bench.py --self-check 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E '^(not )?ok - '
expect_eq "bench self-check exits 0" "$rc" 0
expect_match "bench self-check prints the targets table" "$out" '^\| \(5\) status p99 < 5 ms'
out=$(cd "$top" && B="$T/b" BENCH_REF_PY=pyenv python3 bench/bench.py --self-check 2>&1)
expect_eq "a bad BENCH_REF_PY exits 1" "$?" 1
expect_match "a bad BENCH_REF_PY is named" "$out" "BENCH_REF_PY must be debian or path, not 'pyenv'"
exit $_failed
