#!/bin/sh
# Disk full under state_dir (an injected ENOSPC on every write under it, by
# the LD_PRELOAD shim tests/faults/enospc.c, while a trigger file exists):
# replies received while nothing can be stored are held in memory, never
# sent again; the job pauses with the store's error, visible in status, logs
# and /events; nothing new is sent while the store fails; once space is back
# the held writes commit, and after `resume` the job finishes with every item
# accounted for and the stored cost equal to what the simulator billed. A
# budget then stops the job at its budget plus at most what was in flight.
. "$(dirname "$0")/lib.inc"

B=${B:-build}
case "$B" in /*) ;; *) B="$top/$B" ;; esac
SHIM="$B/tests/libenospc.so"
[ -f "$SHIM" ] || { nok "the fault shim is built ($SHIM)"; exit 1; }
mkdir -p "$T/var"
VAR=$(cd "$T/var" && pwd -P)
FULL="$T/disk-full"

start_sim T --latency-ms 2 --seed 11 || exit 1
TEACHER_CONC=8
TEACHER_TIMEOUT=600   # held replies must not time out (a retry would re-send)
write_conf
gate() { curl -s -o /dev/null -X POST -d "{\"hold-after\":$1}" "http://127.0.0.1:$SIM_PORT_T/sim/config"; }
# The daemon alone runs with the shim (the test's own sqlite3 does not).
start_daemon_shim() {
  LD_PRELOAD="$SHIM" MT_ENOSPC_DIR="$VAR" MT_ENOSPC_TRIGGER="$FULL" ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
    "$BIN/medthinkd" -c "$T/medthinkd.conf" 2>>"$T/medthinkd.log" &
  DAEMON_PID=$!
  _pids="$_pids $DAEMON_PID"
  i=0
  until "$BIN/medthink" health >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$DAEMON_PID" 2>/dev/null; then
      echo "# medthinkd did not start:"; tail -n 20 "$T/medthinkd.log" | sed 's/^/#   /'
      return 1
    fi
    sleep 0.05
  done
}
start_daemon_shim || { nok "daemon starts"; exit 1; }
# The simulator answers 30 replies, then holds the rest until told.
gate 30
"$BIN/medthink" import "$SHARED/data/medqa/medqa_test.jsonl" --format medqa --name medqa >/dev/null
cat >"$T/j.json" <<J
{"name":"disk","dataset":"medqa","kind":"stage1","teacher":"sim","eval_fraction":0,"seed":3,"max_items":120}
J
job=$("$BIN/medthink" submit "$T/j.json")
sim_field() { sim_stats "$SIM_PORT_T" | jq_py "d.get('$1',0)"; }
status_field() { api "http://x/v1/jobs/$job" | jq_py "$1" 2>/dev/null; }
# wait_for SECONDS CMD...: until CMD succeeds (a hang guard, not a pace)
wait_for() {
  end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.1; done
}
gate_used() { [ "$(sim_field gate_left)" = 0 ] && [ "$(sim_field gated_now)" -gt 0 ]; }
wait_for 120 gate_used || nok "the first 30 replies went out" "$(sim_stats "$SIM_PORT_T")"

# The disk fills; 20 more replies come back while nothing can be stored.
touch "$FULL"
gate 20
reason_is_store() { status_field 'd.get("state")+" "+str(d.get("reason"))' | grep -q '^paused store: cannot write'; }
if wait_for 120 reason_is_store; then ok "the job pauses on the full disk"; else nok "the job pauses on the full disk" "$(api http://x/v1/jobs/$job)"; fi
st=$("$BIN/medthink" status "$job" 2>&1)
expect_match "status names the database and the error" "$st" "store: cannot write $VAR/medthink.db: database or disk is full; free space, then .medthink resume $job."
grep -q "store: cannot write $VAR/medthink.db" "$T/medthinkd.log" && ok "the daemon log says so" || nok "the daemon log says so"
ev=$(api "http://x/v1/jobs/$job/events?follow=0")
expect_match "/events shows the reason during the fault" "$ev" "store: cannot write"
# Whatever was still on the wire comes back now and is held as well.
gate 0
drained() { [ "$(sim_field gated_now)" = 0 ]; }
wait_for 120 drained || nok "the simulator drained"
sent=$(sim_field requests_total)
# Nothing new goes out while the store fails (give the daemon a few of its
# retry rounds to misbehave).
sleep 2
sent2=$(sim_field requests_total)
expect_eq "no request is sent while the store fails" "$sent2" "$sent"
expect_eq "no body sent twice during the fault" "$(sim_field duplicate_bodies)" "0"
echo "# requests at the simulator during the fault: $sent2 (distinct bodies $(sim_field distinct_bodies))"

# Space is back: the held writes commit (the pause is stored and in the log).
rm -f "$FULL"
stored_paused() { [ "$(sqlite3 "$T/var/medthink.db" "select state from jobs where id=${job#job_}")" = paused ]; }
if wait_for 60 stored_paused; then ok "the held writes commit once space is back"; else nok "the held writes commit once space is back"; fi
# The stored state event (not only the status snapshot) carries the reason.
logged() { api "http://x/v1/jobs/$job/events?follow=0" | grep -A1 '^event: state' | grep -q "store: cannot write $VAR/medthink.db: database or disk is full"; }
if wait_for 60 logged; then ok "/events has the stored pause with its reason"; else nok "/events has the stored pause with its reason" "$(api "http://x/v1/jobs/$job/events?follow=0" | tail -5)"; fi
lg=$("$BIN/medthink" logs "$job" 2>&1)
expect_match "medthink logs shows the reason" "$lg" "paused.*store: cannot write $VAR/medthink.db: database or disk is full"
"$BIN/medthink" resume "$job" >/dev/null
if wait_job "$job" done 240; then ok "the job finishes after resume"; else nok "the job finishes after resume" "$(api http://x/v1/jobs/$job)"; fi

db="$T/var/medthink.db"
j=${job#job_}
stats=$(sim_stats "$SIM_PORT_T")
echo "# simulator: $(printf '%s' "$stats" | jq_py '{k: d[k] for k in ("requests_total","distinct_bodies","max_requests_per_body","duplicate_bodies")}')"
expect_eq "no body was ever sent twice" "$(printf '%s' "$stats" | jq_py 'd["duplicate_bodies"]')" "0"
acc=$(sqlite3 "$db" "select count(distinct item_seq) from tasks where job_id=$j and step='screen' and state!='pending'")
expect_eq "every item accounted for" "$acc" "120"
expect_eq "nothing pending" "$(sqlite3 "$db" "select count(*) from tasks where job_id=$j and state='pending'")" "0"
expect_eq "no item failed" "$(sqlite3 "$db" "select count(*) from tasks where job_id=$j and state='failed'")" "0"
reqs=$(printf '%s' "$stats" | jq_py 'd["requests_total"]')
rows=$(sqlite3 "$db" "select coalesce(sum(attempts),0) from calls where job_id=$j")
expect_eq "every request sent has its call row" "$rows" "$reqs"
billed=$(printf '%s' "$stats" | jq_py 'd["prompt_tokens"]*2.5/1e6 + d["completion_tokens"]*10/1e6')
stored=$(sqlite3 "$db" "select coalesce(sum(cost_usd),0) from calls where job_id=$j")
same=$(python3 -c "print(abs($billed-$stored) <= 1e-9 + 1e-9*$billed)")
expect_eq "stored cost == billed ($stored vs $billed)" "$same" "True"

# A budget with the disk filling mid-way: the spend stops at the budget plus
# what was in flight, and what was received counts even before it is stored.
curl -s -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT_T/sim/reset"
cat >"$T/b.json" <<J
{"name":"budget","dataset":"medqa","kind":"stage1","teacher":"sim","eval_fraction":0,"seed":4,"max_items":300,"budget_usd":0.2}
J
gate 15
job2=$("$BIN/medthink" submit "$T/b.json")
job=$job2
wait_for 120 gate_used || nok "the budget job started"
touch "$FULL"
gate 0
if wait_for 120 reason_is_store; then ok "the budget job pauses on the full disk"; else nok "the budget job pauses on the full disk" "$(api http://x/v1/jobs/$job)"; fi
wait_for 120 drained
rm -f "$FULL"
wait_for 60 stored_paused || nok "held writes of the budget job commit"
"$BIN/medthink" resume "$job" >/dev/null
budget_paused() { status_field 'd.get("state")+" "+str(d.get("reason"))' | grep -q '^paused budget reached'; }
if wait_for 240 budget_paused; then ok "the budget stops the job"; else nok "the budget stops the job" "$(api http://x/v1/jobs/$job)"; fi
wait_for 60 drained
stats=$(sim_stats "$SIM_PORT_T")
billed=$(printf '%s' "$stats" | jq_py 'd["prompt_tokens"]*2.5/1e6 + d["completion_tokens"]*10/1e6')
j=${job#job_}
# What one call costs at most here, times the calls that may be in flight (the window).
maxcall=$(sqlite3 "$T/var/medthink.db" "select coalesce(max(cost_usd),0) from calls where job_id=$j")
win=$((8 + 64))
within=$(python3 -c "print($billed <= 0.2 + $win*$maxcall)")
expect_eq "spend within the budget plus what was in flight (billed \$$billed, budget \$0.2)" "$within" "True"
spent=$(status_field 'd["cost_usd"]')
close=$(python3 -c "print(abs($spent-$billed) <= 1e-9 + 1e-9*$billed)")
expect_eq "status spend == billed ($spent vs $billed)" "$close" "True"
expect_eq "no body sent twice under the budget" "$(printf '%s' "$stats" | jq_py 'd["duplicate_bodies"]')" "0"
[ "$_failed" = 0 ]
