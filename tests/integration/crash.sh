#!/bin/sh
# Crash safety: SIGKILL the daemon at 20+ random moments of a pipeline job,
# restart it each time; the job finishes with every item accounted for, no
# artifact lost or duplicated, and no committed call sent again (counted at
# the simulator: every request beyond the stored calls was in flight at a
# kill).
. "$(dirname "$0")/lib.sh"

KILLS=${KILLS:-20}
start_sim T --latency-ms 20 --latency-jitter-ms 15 || exit 1
start_sim S --latency-ms 10 --latency-jitter-ms 5 || exit 1
TEACHER_CONC=16
write_conf
start_daemon || { nok "daemon starts"; exit 1; }
"$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro >/dev/null
cat >"$T/p.json" <<J
{"name":"crash","dataset":"gastro","kind":"pipeline","teacher":"sim","student":"local",
 "eval_fraction":0.25,"seed":5,"train":"none"}
J
job=$("$BIN/medthink" submit "$T/p.json")
kills=0
while [ $kills -lt "$KILLS" ]; do
  # a random moment: 20..400 ms after the (re)start
  ms=$(python3 -c "import random; print(random.randint(20, 400))")
  sleep "$(python3 -c "print($ms/1000)")"
  state=$(api "http://x/v1/jobs/$job" | jq_py 'd.get("state")' 2>/dev/null)
  [ "$state" = done ] && break
  stop_daemon -KILL
  kills=$((kills + 1))
  start_daemon || { nok "restart after kill $kills"; exit 1; }
done
echo "# killed $kills times"
[ $kills -ge 5 ] && ok "killed the daemon $kills times mid-job" || nok "killed enough times ($kills)"
if wait_job "$job" done 180; then ok "job finishes after the kills"; else nok "job finishes after the kills" "$(api http://x/v1/jobs/$job)"; fi
db="$T/var/medthink.db"
j=${job#job_}
total=$(api "http://x/v1/datasets/gastro" | jq_py 'd["items"]')
acc=$(sqlite3 "$db" "select count(distinct item_seq) from tasks where job_id=$j and step in ('screen','eval')")
expect_eq "every item accounted for" "$acc" "$total"
pending=$(sqlite3 "$db" "select count(*) from tasks where job_id=$j and state='pending'")
expect_eq "nothing pending" "$pending" "0"
missing=$(sqlite3 "$db" "select count(*) from tasks t where job_id=$j and state='done' and step='explain' and not exists (select 1 from artifacts a where a.job_id=$j and a.kind='explanation' and a.item_seq=t.item_seq)")
expect_eq "no artifact lost" "$missing" "0"
dups=$(sqlite3 "$db" "select count(*) from (select hash from calls where error is null group by hash having count(*)>1)")
expect_eq "no call committed twice" "$dups" "0"
stored=$(sqlite3 "$db" "select count(*) from calls where job_id=$j")
sent=$(( $(sim_stats "$SIM_PORT_T" | jq_py 'd["requests"]') + $(sim_stats "$SIM_PORT_S" | jq_py 'd["requests"]') ))
extra=$((sent - stored))
# Each kill can lose at most the calls in flight (teacher 16 + student 8).
limit=$((kills * 24))
[ $extra -ge 0 ] && [ $extra -le $limit ] && ok "re-sent only calls in flight at a kill ($extra <= $limit)" || nok "re-sent only in-flight calls" "sent $sent stored $stored kills $kills"
"$BIN/medthink" export "$job" --set 1 --format openai -o "$T/s1.jsonl"
n1=$(wc -l <"$T/s1.jsonl")
d1=$(sqlite3 "$db" "select count(*) from artifacts where job_id=$j and kind='explanation'")
expect_eq "set 1 complete after crashes" "$n1" "$d1"
[ "$_failed" = 0 ]
