#!/bin/sh
# A teacher that is down (port closed) or failing (500 to everything): after
# down_after_s the job pauses with a reason naming the endpoint and its last
# error (status, logs, /events, daemon log), its queued calls are cancelled
# (nothing in flight), requests at the simulator stay bounded, and after the
# endpoint is back `resume` finishes the job with every item accounted for
# and nothing answered sent twice. A job with "on_endpoint_down":"fail"
# fails instead.
. "$(dirname "$0")/lib.inc"

# wait_for SECONDS CMD...: until CMD succeeds (a hang guard, not a pace)
wait_for() {
  end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.1; done
}
status_field() { api "http://x/v1/jobs/$job" | jq_py "$1" 2>/dev/null; }
paused_down() { status_field 'd.get("state")+" "+str(d.get("reason"))' | grep -q '^paused endpoint teacher.sim is down'; }
no_flight() { [ "$(status_field 'sum(v["in_flight"] for v in d["counts"].values())')" = 0 ]; }
# The stored state event carries the reason (not only the status snapshot).
logged_down() { api "http://x/v1/jobs/$job/events?follow=0" | grep -A1 '^event: state' | grep -q "endpoint teacher.sim is down: every call failed for"; }

# A port that was just closed: a simulator started and stopped.
start_sim T --latency-ms 1 || exit 1
PORT=$SIM_PORT_T
kill "$SIM_PID_T"; wait "$SIM_PID_T" 2>/dev/null
TEACHER_EXTRA="down_after_s = 2"
write_conf
start_daemon || { nok "daemon starts"; exit 1; }
"$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro >/dev/null
cat >"$T/j.json" <<J
{"name":"down","dataset":"gastro","kind":"stage1","teacher":"sim","eval_fraction":0,"seed":1}
J
job=$("$BIN/medthink" submit "$T/j.json")
if wait_for 120 paused_down; then ok "port closed: the job pauses"; else nok "port closed: the job pauses" "$(api http://x/v1/jobs/$job)"; fi
st=$("$BIN/medthink" status "$job" 2>&1)
expect_match "port closed: status names the endpoint and the error" "$st" "endpoint teacher.sim is down: every call failed for [0-9]+ s; last error: .*(refused|connect).*; fix it, then .medthink resume $job."
if wait_for 60 no_flight; then ok "port closed: nothing left in flight"; else nok "port closed: nothing left in flight" "$(api http://x/v1/jobs/$job)"; fi
eps=$(status_field 'd["endpoints"]["teacher.sim"]["state"]')
expect_eq "port closed: status shows the endpoint down" "$eps" "down"
if wait_for 30 logged_down; then ok "port closed: /events has the reason"; else nok "port closed: /events has the reason"; fi
expect_match "port closed: medthink logs has the reason" "$("$BIN/medthink" logs "$job" 2>&1)" "teacher.sim is down"
grep -q "teacher.sim is down" "$T/medthinkd.log" && ok "port closed: the daemon log says so" || nok "port closed: the daemon log says so"
# Back on the same port; resume goes on.
start_sim T --listen "127.0.0.1:$PORT" --latency-ms 1 || exit 1
"$BIN/medthink" resume "$job" >/dev/null
if wait_job "$job" done 180; then ok "port closed: resumed job finishes"; else nok "port closed: resumed job finishes" "$(api http://x/v1/jobs/$job)"; fi
db="$T/var/medthink.db"
j=${job#job_}
expect_eq "port closed: every item accounted for, none failed" \
  "$(sqlite3 "$db" "select count(*) from tasks where job_id=$j and step='screen' and state in ('done','dropped')")" "48"
expect_eq "port closed: no body sent twice" "$(sim_stats "$SIM_PORT_T" | jq_py 'd["duplicate_bodies"]')" "0"

# A teacher answering 500 to everything.
curl -s -o /dev/null -X POST -d '{"fail-500":1}' "http://127.0.0.1:$SIM_PORT_T/sim/config"
curl -s -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT_T/sim/reset"
# New items (another wording of each question): nothing is in the cache.
variant() {
  python3 - "$1" "$top/examples/gastro-sample.jsonl" >"$T/$1.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[2]):
    d = json.loads(l)
    d["question"] = "(" + sys.argv[1] + ") " + d["question"]
    print(json.dumps(d))
PY
  "$BIN/medthink" import "$T/$1.jsonl" --name "$1" >/dev/null
}
variant g2
variant g3
cat >"$T/k.json" <<J
{"name":"failing","dataset":"g2","kind":"stage1","teacher":"sim","eval_fraction":0,"seed":2}
J
job=$("$BIN/medthink" submit "$T/k.json")
if wait_for 120 paused_down; then ok "500s: the job pauses"; else nok "500s: the job pauses" "$(api http://x/v1/jobs/$job)"; fi
expect_match "500s: the reason names the last error" "$(status_field 'd["reason"]')" "last error: HTTP 500"
if wait_for 60 no_flight; then ok "500s: nothing left in flight"; else nok "500s: nothing left in flight" "$(api http://x/v1/jobs/$job)"; fi
if wait_for 30 logged_down; then ok "500s: /events has the reason"; else nok "500s: /events has the reason"; fi
s1=$(sim_stats "$SIM_PORT_T")
n1=$(printf '%s' "$s1" | jq_py 'd["requests_total"]')
m1=$(printf '%s' "$s1" | jq_py 'd["max_requests_per_body"]')
echo "# 500s: requests before the pause: $n1 (distinct $(printf '%s' "$s1" | jq_py 'd["distinct_bodies"]'), max per body $m1)"
# Bounded: each body at most 1 + max_retries (6) attempts, and the window.
[ "$m1" -le 7 ] && ok "500s: no body sent more than 1 + max_retries times" || nok "500s: bounded per body" "$s1"
[ "$n1" -le $((7 * (32 + 64))) ] && ok "500s: requests bounded ($n1)" || nok "500s: requests bounded" "$s1"
sleep 2
n2=$(sim_stats "$SIM_PORT_T" | jq_py 'd["requests_total"]')
expect_eq "500s: nothing sent while paused" "$n2" "$n1"
curl -s -o /dev/null -X POST -d '{"fail-500":0}' "http://127.0.0.1:$SIM_PORT_T/sim/config"
"$BIN/medthink" resume "$job" >/dev/null
if wait_job "$job" done 180; then ok "500s: resumed job finishes"; else nok "500s: resumed job finishes" "$(api http://x/v1/jobs/$job)"; fi
j=${job#job_}
expect_eq "500s: every item accounted for, none failed" \
  "$(sqlite3 "$db" "select count(*) from tasks where job_id=$j and step='screen' and state in ('done','dropped')")" "48"
# A body answered with 200 is never sent again: every repeat is of a 500.
s2=$(sim_stats "$SIM_PORT_T")
n200=$(printf '%s' "$s2" | jq_py 'd["by_status"].get("200",0)')
dist=$(printf '%s' "$s2" | jq_py 'd["distinct_bodies"]')
expect_eq "500s: one 200 per distinct body" "$n200" "$dist"
echo "# 500s: simulator at the end: $(printf '%s' "$s2" | jq_py '{k: d[k] for k in ("requests_total","distinct_bodies","max_requests_per_body","duplicate_bodies")}')"
billed=$(printf '%s' "$s2" | jq_py 'd["prompt_tokens"]*2.5/1e6 + d["completion_tokens"]*10/1e6')
stored=$(sqlite3 "$db" "select coalesce(sum(cost_usd),0) from calls where job_id=$j")
same=$(python3 -c "print(abs($billed-$stored) <= 1e-9 + 1e-9*$billed)")
expect_eq "500s: stored cost == billed ($stored vs $billed)" "$same" "True"

# on_endpoint_down "fail": the job fails with the reason instead.
curl -s -o /dev/null -X POST -d '{"fail-500":1}' "http://127.0.0.1:$SIM_PORT_T/sim/config"
cat >"$T/f.json" <<J
{"name":"failfast","dataset":"g3","kind":"stage1","teacher":"sim","eval_fraction":0,"seed":9,"on_endpoint_down":"fail"}
J
job=$("$BIN/medthink" submit "$T/f.json")
if wait_job "$job" failed 120; then ok "on_endpoint_down fail: the job fails"; else nok "on_endpoint_down fail: the job fails" "$(api http://x/v1/jobs/$job)"; fi
expect_match "on_endpoint_down fail: with the reason" "$(status_field 'd["reason"]')" "endpoint teacher.sim is down: every call failed"
code=$(api_code POST /v1/jobs -d '{"dataset":"gastro","kind":"stage1","teacher":"sim","on_endpoint_down":"retry"}')
expect_eq "on_endpoint_down is validated" "$code" "422"
expect_match "on_endpoint_down error names the field" "$(cat "$T/last.json")" "on_endpoint_down"
[ "$_failed" = 0 ]
