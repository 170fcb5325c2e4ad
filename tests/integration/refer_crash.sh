#!/bin/sh
# Crash safety of the refer job (docs/refer.md): the daemon is killed with
# SIGKILL twice mid-job (paced by stored calls, not the clock) and
# restarted; the job finishes with every region's expressions and every
# check stored once, no call committed twice, and only calls in flight at a
# kill sent again.
. "$(dirname "$0")/lib.inc"

D="$T/lsms"
python3 "$top/tests/refer_pngs.py" "$D" 30 || { nok "generate the PNGs"; exit 1; }
start_sim T --latency-ms 40 --latency-jitter-ms 20 || exit 1
TEACHER_CONC=4
write_conf
start_daemon || { nok "daemon starts"; exit 1; }
"$BIN/medthink" import "$D" --format masks --name lsms >/dev/null || { nok "import"; exit 1; }
cat >"$T/r.json" <<J
{"name":"refer-crash","dataset":"lsms","kind":"refer","teacher":"sim","refer":{"expressions_per_region":3}}
J
job=$("$BIN/medthink" submit "$T/r.json")
j=${job#job_}
db="$T/var/medthink.db"
kills=0
for at in 40 130; do
  i=0
  while [ "$(sqlite3 "$db" "select count(*) from calls where job_id=$j" 2>/dev/null || echo 0)" -lt $at ]; do
    i=$((i + 1)); [ $i -gt 1200 ] && break   # hang guard
    sleep 0.05
  done
  stop_daemon -KILL
  kills=$((kills + 1))
  start_daemon || { nok "restart after kill $kills"; exit 1; }
done
ok "killed the daemon $kills times mid-job"
if wait_job "$job" done 180; then ok "refer job finishes after the kills"; else nok "refer job finishes after the kills" "$(api http://x/v1/jobs/$job)"; fi
expect_eq "every region has its expressions" "$(sqlite3 "$db" "select count(*) from artifacts where job_id=$j and kind='refer_expressions'")" "60"
expect_eq "every expression has its check" "$(sqlite3 "$db" "select count(*) from artifacts where job_id=$j and kind like 'refer_check%'")" "180"
expect_eq "nothing pending" "$(sqlite3 "$db" "select count(*) from tasks where job_id=$j and state!='done'")" "0"
# A writing request is unique to its region (its overlay outlines it); two
# screening requests may be alike on purpose (the same expression for two
# lesions of one image: the screener is not told the target), and two alike
# in flight together are both sent, as any two identical requests are.
dups=$(sqlite3 "$db" "select count(*) from (select hash from calls where error is null and request like '%### Task: refer\\nWrite%' group by hash having count(*)>1)")
expect_eq "no writing call committed twice" "$dups" "0"
w=$(sqlite3 "$db" "select count(distinct hash) from calls where error is null and request like '%### Task: refer\\nWrite%'")
expect_eq "the dup check sees every writing call" "$w" "60"
stored=$(sqlite3 "$db" "select count(*) from calls where job_id=$j")
sent=$(sim_stats "$SIM_PORT_T" | jq_py 'd["requests_total"]')
extra=$((sent - stored))
# Each kill loses what was not committed: the 4 calls on the wire, plus
# replies received in the group commit's last few milliseconds (at most one
# window more; docs/guarantees.md).
limit=$((kills * 8))
[ $extra -ge 0 ] && [ $extra -le $limit ] && ok "re-sent only calls in flight at a kill ($extra <= $limit)" || nok "re-sent only in-flight calls" "sent $sent stored $stored kills $kills"
"$BIN/medthink" export "$job" --set 1 --format refcoco -o "$T/refs.json" >/dev/null 2>&1
check "refcoco export valid after the kills" python3 "$top/tests/refer_reader.py" refcoco "$T/refs.json"
[ "$_failed" = 0 ]
