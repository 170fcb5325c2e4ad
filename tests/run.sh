#!/bin/sh
# Runs every test: the cmocka unit tests in $B/tests/, then the integration
# scripts in tests/integration/ (which start the real daemon and the simulator).
# Each integration script prints "ok - NAME" or "not ok - NAME" per check.
# Ends with the line "N passed, N failed"; exits non-zero when anything failed.
# TESTS=pattern runs only the tests whose file name contains the pattern.
B=${B:-build}
BIN=${BIN:-bin}
export B BIN
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
passed=0
failed=0
failures=""
log_dir="$top/$B/test-logs"
mkdir -p "$log_dir"

for t in "$B"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  case "$name" in *"${TESTS:-}"*) ;; *) continue ;; esac
  out="$log_dir/$name.log"
  (cd "$top" && "$t") >"$out" 2>&1
  rc=$?
  ok=$(grep -c '^\[       OK \]' "$out")
  run=$(grep -c '^\[ RUN      \]' "$out")
  skip=$(grep -c '^\[  SKIPPED \]' "$out")
  bad=$((run - ok - skip))
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
  # A test program that ran no test has not passed.
  if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ] && [ "$skip" -eq 0 ]; then bad=1; fi
  passed=$((passed + ok))
  failed=$((failed + bad))
  if [ "$bad" -ne 0 ]; then
    failures="$failures $name"
    echo "FAILED $name (exit $rc), log: $out"
    grep -E '^\[  (FAILED|ERROR) |error|ERROR|Sanitizer|runtime error' "$out" | head -20
  else
    echo "passed $name ($ok)"
  fi
done

for s in tests/integration/*.sh; do
  [ -f "$s" ] || continue
  name=$(basename "$s" .sh)
  case "$name" in *"${TESTS:-}"*) ;; *) continue ;; esac
  out="$log_dir/$name.log"
  sh "$s" >"$out" 2>&1
  rc=$?
  ok=$(grep -c '^ok - ' "$out")
  bad=$(grep -c '^not ok - ' "$out")
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
  # A script that checked nothing has not passed: it counts as a failure.
  if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then
    bad=1
    echo "# $name printed no result" >>"$out"
  fi
  passed=$((passed + ok))
  failed=$((failed + bad))
  if [ "$bad" -ne 0 ]; then
    failures="$failures $name"
    echo "FAILED $name (exit $rc), log: $out"
    grep -E '^not ok - |ERROR|Sanitizer|runtime error' "$out" | head -20
  else
    echo "passed $name ($ok)"
  fi
done

[ -n "$failures" ] && echo "failing:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
