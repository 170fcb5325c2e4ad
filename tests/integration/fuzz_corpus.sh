#!/bin/sh
# Replays every fuzz target's seed corpus and regression inputs
# (tests/fuzz/{corpus,regress}/TARGET/) through the plain build of the target
# ($B/fuzz/TARGET: the fuzz target linked with tests/fuzz/driver.c, no
# libFuzzer), so CI without clang keeps them passing. One check per input.
. "$(dirname "$0")/lib.inc"
B=${B:-build}
case "$B" in /*) ;; *) B="$top/$B" ;; esac
cd "$top" || exit 2

n=0
for src in tests/fuzz/fuzz_*.c; do
  t=$(basename "$src" .c); t=${t#fuzz_}
  bin="$B/fuzz/$t"
  if [ ! -x "$bin" ]; then nok "fuzz $t: $bin is built"; continue; fi
  [ -d "tests/fuzz/corpus/$t" ] || { nok "fuzz $t: has a seed corpus"; continue; }
  for f in "tests/fuzz/corpus/$t"/* "tests/fuzz/regress/$t"/*; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    if out=$("$bin" "$f" 2>&1); then
      ok "fuzz $t: ${f#tests/fuzz/}"
    else
      nok "fuzz $t: ${f#tests/fuzz/}" "$(printf '%s' "$out" | grep -v '^ok - ' | head -c 600)"
    fi
  done
done
[ "$n" -gt 0 ] || nok "fuzz inputs found"
[ "$_failed" = 0 ]
