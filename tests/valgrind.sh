#!/bin/sh
# make check-valgrind: the daemon under valgrind (memcheck) through a whole
# pipeline job, an export and a clean shutdown. Fails on any memcheck error
# or a definite/indirect leak. Slow (about a minute); not part of make test.
. "$(dirname "$0")/integration/lib.inc"
start_sim T --latency-ms 5 || exit 1
SIM_PORT_S=$SIM_PORT_T
write_conf
# medthinkd links jemalloc (Makefile, MALLOC): memcheck replaces that
# library's malloc and free as it does libc's.
valgrind --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
  --soname-synonyms=somalloc=libjemalloc.so* \
  "$BIN/medthinkd" -c "$T/medthinkd.conf" 2>"$T/valgrind.log" &
DAEMON_PID=$!
_pids="$_pids $DAEMON_PID"
i=0
until "$BIN/medthink" health >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -gt 300 ] && { nok "daemon starts under valgrind"; exit 1; }
  sleep 0.1
done
"$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro >/dev/null
sed 's/gastro-sample/gastro/' "$top/examples/pipeline.json" >"$T/p.json"
job=$("$BIN/medthink" submit "$T/p.json")
if wait_job "$job" done 300; then ok "pipeline under valgrind"; else nok "pipeline under valgrind"; fi
"$BIN/medthink" export "$job" --set 2 --format grpo -o "$T/s2.jsonl" >/dev/null && ok "export under valgrind" || nok "export under valgrind"
stop_daemon -TERM
expect_eq "valgrind: no errors, no leaks (exit status)" "$DAEMON_RC" "0"
grep -q "ERROR SUMMARY: 0 errors" "$T/valgrind.log" && ok "valgrind: ERROR SUMMARY 0" || nok "valgrind: ERROR SUMMARY 0" "$(grep 'ERROR SUMMARY' "$T/valgrind.log")"
[ "$_failed" = 0 ]
