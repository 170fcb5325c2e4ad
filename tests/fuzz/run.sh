#!/bin/sh
# `make fuzz`: runs each libFuzzer target in $B/fuzz/ (build-fuzz) for
# FUZZ_SECONDS (default 60) on a fresh copy of its seed corpus plus its
# regression inputs. A crash, leak, timeout or broken invariant fails the
# run; the input libFuzzer saved is copied to tests/fuzz/regress/TARGET/, where
# `make test` replays it until the bug is fixed (docs/fuzzing.md).
# FUZZ_TARGETS=pattern runs only the targets whose name contains it.
B=${B:-build-fuzz}
secs=${FUZZ_SECONDS:-60}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 2
failed=""
for bin in "$B"/fuzz/*; do
  [ -x "$bin" ] || continue
  t=$(basename "$bin")
  case "$t" in *"${FUZZ_TARGETS:-}"*) ;; *) continue ;; esac
  work="$B/corpus/$t" crashes="$B/crashes/$t" log="$B/logs/$t.log"
  rm -rf "$work" "$crashes"
  mkdir -p "$work" "$crashes" "$B/logs"
  cp tests/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null
  seeds="$work"
  [ -d "tests/fuzz/regress/$t" ] && seeds="$seeds tests/fuzz/regress/$t"
  # Only $work is written to (new inputs); -timeout catches hangs.
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashes/" $seeds >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  found=$(ls "$crashes" 2>/dev/null | wc -l)
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    failed="$failed $t"
    mkdir -p "tests/fuzz/regress/$t"
    for f in "$crashes"/*; do
      [ -f "$f" ] || continue
      cp "$f" "tests/fuzz/regress/$t/"
      echo "$t: saved tests/fuzz/regress/$t/$(basename "$f")"
    done
    echo "$t: FAILED (exit $rc) after ${execs:-?} executions, log: $log"
    grep -E 'ERROR|runtime error|invariant|SUMMARY' "$log" | head -8
  else
    echo "$t: ok, ${execs:-?} executions in ${secs}s, corpus $(ls "$work" | wc -l) inputs"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzz: failing:$failed (fix the bug, keep the saved input as a regression test)"
  exit 1
fi
echo "fuzz: every target ran ${secs}s without a crash"
