#!/bin/sh
# Crash safety: SIGKILL the daemon at 20+ random moments of a pipeline job,
# restart it each time; the job finishes with every item accounted for, no
# artifact lost or duplicated, and no committed call sent again (counted at
# the simulator: every request beyond the stored calls was in flight at a
# kill).
. "$(dirname "$0")/lib.inc"

KILLS=${KILLS:-20}
start_sim T --latency-ms 120 --latency-jitter-ms 60 || exit 1
start_sim S --latency-ms 60 --latency-jitter-ms 30 || exit 1
TEACHER_CONC=4
write_conf
start_daemon || { nok "daemon starts"; exit 1; }
"$BIN/medthink" import "$SHARED/data/medqa/medqa_test.jsonl" --format medqa --name medqa >/dev/null
# 300 training items and about 64 held-out ones: a few hundred calls, long
# enough for 20 kills at random moments.
cat >"$T/p.json" <<J
{"name":"crash","dataset":"medqa","kind":"pipeline","teacher":"sim","student":"local",
 "eval_fraction":0.05,"seed":5,"train":"none","max_items":300}
J
job=$("$BIN/medthink" submit "$T/p.json")
kills=0
while [ $kills -lt "$KILLS" ]; do
  # a random moment: 20..400 ms after the (re)start
  ms=$(( $(od -An -N2 -tu2 /dev/urandom) % 380 + 20 ))
  sleep "$(printf '0.%03d' "$ms")"
  state=$(api "http://x/v1/jobs/$job" | jq_py 'd.get("state")' 2>/dev/null)
  [ "$state" = done ] && break
  stop_daemon -KILL
  kills=$((kills + 1))
  start_daemon || { nok "restart after kill $kills"; exit 1; }
done
echo "# killed $kills times"
[ $kills -ge "$KILLS" ] && ok "killed the daemon $kills times mid-job" || nok "killed enough times ($kills)"
if wait_job "$job" done 180; then ok "job finishes after the kills"; else nok "job finishes after the kills" "$(api http://x/v1/jobs/$job)"; fi
db="$T/var/medthink.db"
j=${job#job_}
ev=$(api "http://x/v1/jobs/$job" | jq_py 'd["eval"]["total"] + d["eval"]["failed"]')
acc=$(sqlite3 "$db" "select count(distinct item_seq) from tasks where job_id=$j and step='screen' and state!='pending'")
expect_eq "every training item accounted for" "$acc" "300"
evn=$(sqlite3 "$db" "select count(distinct item_seq) from tasks where job_id=$j and step='eval' and state!='pending'")
expect_eq "every held-out item accounted for" "$evn" "$ev"
pending=$(sqlite3 "$db" "select count(*) from tasks where job_id=$j and state='pending'")
expect_eq "nothing pending" "$pending" "0"
missing=$(sqlite3 "$db" "select count(*) from tasks t where job_id=$j and state='done' and step='explain' and not exists (select 1 from artifacts a where a.job_id=$j and a.kind='explanation' and a.item_seq=t.item_seq)")
expect_eq "no artifact lost" "$missing" "0"
dups=$(sqlite3 "$db" "select count(*) from (select hash from calls where error is null group by hash having count(*)>1)")
expect_eq "no call committed twice" "$dups" "0"
stored=$(sqlite3 "$db" "select count(*) from calls where job_id=$j")
sent=$(( $(sim_stats "$SIM_PORT_T" | jq_py 'd["requests_total"]') + $(sim_stats "$SIM_PORT_S" | jq_py 'd["requests_total"]') ))
extra=$((sent - stored))
# Each kill can lose at most the calls in flight (teacher 4 + student 8).
limit=$((kills * 12))
[ $extra -ge 0 ] && [ $extra -le $limit ] && ok "re-sent only calls in flight at a kill ($extra <= $limit)" || nok "re-sent only in-flight calls" "sent $sent stored $stored kills $kills"
"$BIN/medthink" export "$job" --set 1 --format openai -o "$T/s1.jsonl"
n1=$(wc -l <"$T/s1.jsonl")
d1=$(sqlite3 "$db" "select count(*) from artifacts where job_id=$j and kind='explanation'")
expect_eq "set 1 complete after crashes" "$n1" "$d1"
[ "$_failed" = 0 ]
