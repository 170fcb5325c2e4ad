#!/bin/sh
# Crash safety: SIGKILL the daemon at 20 random points of a pipeline job,
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
# 300 training items and about 64 held-out ones: several hundred calls.
cat >"$T/p.json" <<J
{"name":"crash","dataset":"medqa","kind":"pipeline","teacher":"sim","student":"local",
 "eval_fraction":0.05,"seed":5,"train":"none","max_items":300}
J
job=$("$BIN/medthink" submit "$T/p.json")
# Kills are paced by work, not by the clock: before each one the simulators
# let a random 1..12 replies each go and then hold the rest (hold-after), and
# the daemon is killed once one of them has used its share, with its held
# calls in flight. A job of well over 600 calls outlasts 20 kills however
# loaded the machine is.
sim_field() { sim_stats "$1" | tr -d ' ' | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
gate() { curl -s -o /dev/null -X POST -d "{\"hold-after\":$2}" "http://127.0.0.1:$1/sim/config"; }
rnd() { echo $(( $(od -An -N2 -tu2 /dev/urandom) % $1 + 1 )); }
kills=0
while [ $kills -lt "$KILLS" ]; do
  gate "$SIM_PORT_T" "$(rnd 12)"
  gate "$SIM_PORT_S" "$(rnd 12)"
  i=0
  while [ "$(sim_field "$SIM_PORT_T" gate_left)" -gt 0 ] && [ "$(sim_field "$SIM_PORT_S" gate_left)" -gt 0 ]; do
    i=$((i + 1)); [ $i -gt 1200 ] && break   # hang guard: a minute without progress
    sleep 0.05
  done
  state=$(api "http://x/v1/jobs/$job" | jq_py 'd.get("state")' 2>/dev/null)
  [ "$state" = done ] && break
  stop_daemon -KILL
  kills=$((kills + 1))
  start_daemon || { nok "restart after kill $kills"; exit 1; }
done
gate "$SIM_PORT_T" 0
gate "$SIM_PORT_S" 0
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
# The counts a restarted daemon summed in the background plus its own.
sdone=$(api "http://x/v1/jobs/$job" | jq_py 'd["counts"]["explain"]["done"]')
expect_eq "status counts match the store after restarts" "$sdone" "$(sqlite3 "$db" "select count(*) from tasks where job_id=$j and step='explain' and state='done'")"
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
