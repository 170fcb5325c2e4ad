#!/bin/sh
# A student pool of three simulated replicas (base_url lists three URLs).
# One replica holds its calls and is killed (SIGKILL) mid-job: its in-flight
# calls go to the others, it is taken out and gets no calls while down; it
# comes back on the same port, a health check puts it back, and it gets
# calls again. The job finishes with every item answered once, no reply
# stored twice, and the per-replica counters in /metrics and the status.
# Paced by work (the simulators' hold-after gates), not by the clock.
. "$(dirname "$0")/lib.inc"

wait_for() {
  end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.1; done
}
gate() { curl -s -o /dev/null -X POST -d "{\"hold-after\":$2}" "http://127.0.0.1:$1/sim/config"; }
chats() { sim_stats "$1" | jq_py 'd["by_path"].get("/v1/chat/completions",0)'; }
stat_of() { sim_stats "$1" | jq_py "d[\"$2\"]"; }
# metric NAME REPLICA_PORT: the value of a per-replica sample of student.local
metric() {
  api http://x/metrics | sed -n "s|^$1{endpoint=\"student.local\",replica=\"http://127.0.0.1:$2/v1\"} ||p"
}

start_sim T --latency-ms 1 || exit 1
# Each replica answers a few calls, then holds the next ones on the wire:
# the job stalls with calls in flight everywhere, and the test moves it on.
start_sim R0 --replica-id r0 --latency-ms 5 --hold-after 10 || exit 1
start_sim R1 --replica-id r1 --latency-ms 5 --hold-after 3 || exit 1
start_sim R2 --replica-id r2 --latency-ms 5 --hold-after 10 || exit 1
P0=$SIM_PORT_R0 P1=$SIM_PORT_R1 P2=$SIM_PORT_R2
SIM_PORT_S=1
write_conf
# The pool: three URLs in one base_url (SPEC 9); 2 in flight per replica.
sed -i "s|^base_url = http://127.0.0.1:1/v1\$|base_url = http://127.0.0.1:$P0/v1 http://127.0.0.1:$P1/v1/  http://127.0.0.1:$P2/v1|; s|^max_concurrency = 8|max_concurrency = 2|; s|^timeout_s = 10\$|timeout_s = 300|" "$T/medthinkd.conf"
grep -q "127.0.0.1:$P2/v1" "$T/medthinkd.conf" || { nok "config has the pool" "$(cat "$T/medthinkd.conf")"; exit 1; }
check "check-config accepts the pool" "$BIN/medthinkd" -c "$T/medthinkd.conf" --check-config
start_daemon || { nok "daemon starts"; exit 1; }

# 144 items: the sample three times over, each copy worded apart.
python3 - "$top/examples/gastro-sample.jsonl" >"$T/items.jsonl" <<'PY'
import json, sys
for k in range(3):
    for l in open(sys.argv[1]):
        d = json.loads(l)
        d["id"] = "%s-%d" % (d.get("id", ""), k)
        d["question"] = "(copy %d) %s" % (k, d["question"])
        print(json.dumps(d))
PY
"$BIN/medthink" import "$T/items.jsonl" --name pooled >/dev/null || { nok "import"; exit 1; }
items=$(wc -l <"$T/items.jsonl")
cat >"$T/j.json" <<J
{"name":"pool","dataset":"pooled","kind":"stage2","teacher":"sim","student":"local","eval_fraction":0,"seed":3}
J
job=$("$BIN/medthink" submit "$T/j.json")
j=${job#job_}

# Every replica holds calls: kill r1 with its calls in flight.
gated() { [ "$(stat_of "$1" gated_now)" -ge 1 ]; }
if wait_for 120 gated "$P1" && wait_for 120 gated "$P0" && wait_for 120 gated "$P2"; then
  ok "every replica holds calls mid-job"
else
  nok "every replica holds calls mid-job" "$(sim_stats "$P1")"
fi
kill -9 "$SIM_PID_R1"; wait "$SIM_PID_R1" 2>/dev/null
up_is() { [ "$(metric medthink_model_replica_up "$1")" = "$2" ]; }
if wait_for 60 up_is "$P1" 0; then
  ok "the killed replica is taken out (/metrics replica_up 0)"
else
  nok "the killed replica is taken out (/metrics replica_up 0)" "$(api http://x/metrics | grep replica)"
fi
expect_eq "the others stay in" "$(metric medthink_model_replica_up "$P0")/$(metric medthink_model_replica_up "$P2")" "1/1"
sent1=$(metric medthink_model_replica_requests_total "$P1")
before=$(( $(chats "$P0") + $(chats "$P2") ))
st=$(api "http://x/v1/jobs/$job")
expect_eq "status shows the replica out" \
  "$(printf '%s' "$st" | jq_py '[r["state"] for r in d["endpoints"]["student.local"]["replicas"]]')" "['in', 'out', 'in']"
st=$("$BIN/medthink" status "$job")
expect_match "medthink status shows the pool" "$st" "endpoint  student.local: ok, replicas 2 of 3 in"
expect_match "medthink status names the replica out and why" "$st" "out: http://127.0.0.1:$P1/v1 \(.*(refused|reset|connect|reply|closed|Empty)"
hl=$("$BIN/medthink" health)
expect_match "medthink health shows the pool" "$hl" "student.local: 2 of 3 replicas in"
expect_match "medthink health names the replica out" "$hl" "out: http://127.0.0.1:$P1/v1"
# The job goes on at the others (15 more replies each, then they hold
# again): 20 more calls there, none to the dead one.
gate "$P0" 15; gate "$P2" 15
others_got() { [ $(( $(chats "$P0") + $(chats "$P2") )) -ge "$1" ]; }
if wait_for 120 others_got $((before + 20)); then
  ok "the job goes on at the other replicas"
else
  nok "the job goes on at the other replicas" "$(api "http://x/v1/jobs/$job")"
fi
expect_eq "no call is sent to the replica while it is out" "$(metric medthink_model_replica_requests_total "$P1")" "$sent1"
expect_eq "the replica is still out" "$(metric medthink_model_replica_up "$P1")" "0"

# The others hold again; r1 comes back on its port: only it can answer
# now, so the job waits for it (paced by work).
"$BIN/medthink-sim" --listen "127.0.0.1:$P1" --replica-id r1-back --latency-ms 5 >"$T/sim-R1b.out" 2>"$T/sim-R1b.log" &
R1B=$!
_pids="$_pids $R1B"
wait_for 30 grep -q 'listening on' "$T/sim-R1b.out" || { nok "r1 restarts on its port" "$(cat "$T/sim-R1b.log")"; exit 1; }
back_got() { [ "$(chats "$P1")" -ge 5 ]; }
if wait_for 120 back_got; then
  ok "the replica back gets calls again"
else
  nok "the replica back gets calls again" "$(sim_stats "$P1"; api http://x/metrics | grep replica)"
fi
expect_eq "it is back in (/metrics replica_up 1)" "$(metric medthink_model_replica_up "$P1")" "1"
expect_eq "the restarted replica is r1-back" "$(stat_of "$P1" replica_id)" "r1-back"
expect_match "a health check found it (GET /v1/models)" "$(sim_stats "$P1" | jq_py 'd["by_path"].get("/v1/models",0)')" "^[1-9]"
api http://x/metrics >"$T/metrics.txt"
check "/metrics with the per-replica families passes the lint" python3 "$top/tests/promlint.py" "$T/metrics.txt"
expect_match "taken out once" "$(metric medthink_model_replica_taken_out_total "$P1")" "^1$"
gate "$P0" 0; gate "$P2" 0

if wait_job "$job" done 300; then ok "the job finishes"; else nok "the job finishes" "$(api "http://x/v1/jobs/$job")"; fi
db="$T/var/medthink.db"
expect_eq "every item answered, none lost or failed" \
  "$(sqlite3 "$db" "select count(*) from tasks where job_id=$j and step='answer' and state='done'")" "$items"
expect_eq "no task failed" "$(sqlite3 "$db" "select count(*) from tasks where job_id=$j and state='failed'")" "0"
expect_eq "no reply stored twice" \
  "$(sqlite3 "$db" "select count(*) from (select hash from calls where error is null group by hash having count(*)>1)")" "0"
expect_eq "one stored student call per item" \
  "$(sqlite3 "$db" "select count(*) from calls where job_id=$j and endpoint='student.local' and error is null")" "$items"
# Replies received = stored rows: nothing answered was sent again.
got=$(( $(stat_of "$P0" requests_total) + $(stat_of "$P2" requests_total) ))
expect_eq "no reply received twice at the live replicas" "$(( $(stat_of "$P0" duplicate_bodies) + $(stat_of "$P2" duplicate_bodies) + $(stat_of "$P1" duplicate_bodies) ))" "0"
echo "# chat calls: r0 $(chats "$P0"), r1 (killed) 3 answered + held, r1-back $(chats "$P1"), r2 $(chats "$P2"); requests at r0+r2 $got"
exit $_failed
