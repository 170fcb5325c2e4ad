#!/bin/sh
# Teacher faults: 5% 500s, 5% 429s and 2% malformed replies. The job still
# finishes; an item that fails keeps its reason; nothing is stored twice.
. "$(dirname "$0")/lib.inc"

# The teacher wants a key: it comes from the environment, reaches the
# simulator, and is nowhere in the store, the logs or an export.
export MT_TEST_KEY="sk-test-medthink-SECRET-5f2c9a"
start_sim T --latency-ms 3 --fail-500 0.05 --fail-429 0.05 --malformed 0.02 --seed 3 --require-key "$MT_TEST_KEY" || exit 1
start_sim S --latency-ms 1 || exit 1
TEACHER_EXTRA="api_key_env = MT_TEST_KEY"
write_conf
start_daemon || { nok "daemon starts"; exit 1; }
"$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro >/dev/null
cat >"$T/p.json" <<J
{"name":"faults","dataset":"gastro","kind":"pipeline","teacher":"sim","student":"local",
 "eval_fraction":0.25,"seed":7,"train":"none"}
J
job=$("$BIN/medthink" submit "$T/p.json")
if wait_job "$job" done 180; then ok "job finishes despite faults"; else nok "job finishes despite faults" "$(api http://x/v1/jobs/$job)"; fi
stats=$(sim_stats "$SIM_PORT_T")
n500=$(printf '%s' "$stats" | jq_py 'd["by_status"].get("500",0)')
n429=$(printf '%s' "$stats" | jq_py 'd["by_status"].get("429",0)')
[ "$n500" -gt 0 ] && [ "$n429" -gt 0 ] && ok "faults were injected (500: $n500, 429: $n429)" || nok "faults were injected" "$stats"
db="$T/var/medthink.db"
noreason=$(sqlite3 "$db" "select count(*) from tasks where job_id=${job#job_} and state='failed' and (reason is null or reason='')")
expect_eq "every failed item has its reason" "$noreason" "0"
pending=$(sqlite3 "$db" "select count(*) from tasks where job_id=${job#job_} and state='pending'")
expect_eq "nothing left pending" "$pending" "0"
dups=$(sqlite3 "$db" "select count(*) from (select hash from calls where error is null group by hash having count(*)>1)")
expect_eq "no call stored twice" "$dups" "0"
retried=$(sqlite3 "$db" "select count(*) from calls where job_id=${job#job_} and attempts>1")
[ "$retried" -gt 0 ] && ok "retries recorded on calls ($retried)" || nok "retries recorded"
"$BIN/medthink" export "$job" --set 1 --format openai -o "$T/s1.jsonl" >/dev/null
"$BIN/medthink" logs "$job" >"$T/logs.txt"
api "http://x/metrics" >"$T/metrics.txt"
sqlite3 "$db" .dump >"$T/dump.sql"
leaks=$(grep -l "SECRET-5f2c9a" "$T"/var/medthink.db* "$T/dump.sql" "$T/medthinkd.log" "$T/s1.jsonl" "$T/logs.txt" "$T/metrics.txt" 2>/dev/null | tr '\n' ' ')
expect_eq "the API key is in no store, log or export" "$leaks" ""
n401=$(sim_stats "$SIM_PORT_T" | jq_py 'd["by_status"].get("401",0)')
expect_eq "the key reached the teacher (no 401)" "$n401" "0"
[ "$_failed" = 0 ]
