#!/bin/sh
# teacher_mode "batch" against the simulator's batch APIs (OpenAI files +
# batches, Anthropic message batches) and the Anthropic Messages provider:
# a batch job ends with every item applied once and nothing submitted twice,
# also across a SIGKILL of the daemon between submit and completion; an
# expired part of a batch is submitted again (only that part); cancel
# cancels the provider batch; calls cost the batch price.
. "$(dirname "$0")/lib.inc"

wait_for() {
  end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.1; done
}
bstat() { curl -s "http://127.0.0.1:$1/sim/batches" | jq_py "$2"; }
bconf() { curl -s -o /dev/null -X POST -d "$2" "http://127.0.0.1:$1/sim/batch-config"; }
db="$T/var/medthink.db"
q() { sqlite3 "$db" "$1"; }
submitted() { [ "$(q "select count(*) from batches where state='submitted'")" -ge 1 ]; }
# variant NAME PREFIX: the sample with each question reworded (nothing cached)
variant() {
  python3 - "$2" "$top/examples/gastro-sample.jsonl" >"$T/$1.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[2]):
    d = json.loads(l); d["question"] = sys.argv[1] + " " + d["question"]; print(json.dumps(d))
PY
  "$BIN/medthink" import "$T/$1.jsonl" --name "$1" >/dev/null
}
conf() {
  cat >"$T/medthinkd.conf" <<CONF
[daemon]
socket = $T/medthinkd.sock
state_dir = $T/var
prompts_dir = $top/conf/prompts
batch_poll_s = 1

[teacher.sim]
base_url = http://127.0.0.1:$SIM_PORT_T/v1
model = sim-teacher
max_retries = 3
timeout_s = 10
price_in_per_mtok = 2.5
price_out_per_mtok = 10

[teacher.claude]
provider = anthropic
base_url = http://127.0.0.1:$SIM_PORT_A/v1
model = sim-claude
api_key_env = SIM_ANTHROPIC_KEY
max_retries = 3
timeout_s = 10
price_in_per_mtok = 3
price_out_per_mtok = 15
batch_price_in_per_mtok = 1
batch_price_out_per_mtok = 5
CONF
}
job_spec() { # NAME DATASET TEACHER MODE
  printf '{"name":"%s","dataset":"%s","kind":"stage1","teacher":"%s","eval_fraction":0,"seed":1,"teacher_mode":"%s"}\n' "$1" "$2" "$3" "$4" >"$T/$1.json"
  "$BIN/medthink" submit "$T/$1.json"
}
applied_once() { # JOB: every screen item done or dropped, no request with two call rows
  j=${1#job_}
  expect_eq "$2: every item screened" "$(q "select count(*) from tasks where job_id=$j and step='screen' and state in ('done','dropped')")" "48"
  expect_eq "$2: no request stored twice" "$(q "select count(*) from (select hash from calls where job_id=$j and error is null group by hash having count(*)>1)")" "0"
}

export SIM_ANTHROPIC_KEY=sk-ant-sim-key
start_sim T || exit 1
start_sim A --require-key sk-ant-sim-key || exit 1
conf
start_daemon || { nok "daemon starts"; exit 1; }
"$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro >/dev/null

# --- OpenAI batch, with a SIGKILL between submit and completion ---------------
bconf "$SIM_PORT_T" '{"hold":true}'
job=$(job_spec okill gastro sim batch)
if wait_for 60 submitted; then ok "openai: a batch is submitted"; else nok "openai: a batch is submitted" "$(tail -5 "$T/medthinkd.log")"; fi
st=$(api "http://x/v1/jobs/$job" | jq_py 'd["batch"]["batches_open"] >= 1 and d["batch"]["requests"] == 48')
expect_eq "openai: status shows the batch progress" "$st" "True"
expect_match "openai: medthink status shows the batches" "$("$BIN/medthink" status "$job" 2>&1)" "batch +1 batches, 1 open \((validating|in_progress|submitting)\); requests 48"
stop_daemon -KILL
start_daemon || { nok "daemon restarts"; exit 1; }
grep -q "resuming batch" "$T/medthinkd.log" && ok "openai: the restart resumes polling" || nok "openai: the restart resumes polling"
bconf "$SIM_PORT_T" '{"hold":false}'
if wait_job "$job" done 180; then ok "openai: the batch job finishes"; else nok "openai: the batch job finishes" "$(api http://x/v1/jobs/$job)"; fi
expect_eq "openai: nothing submitted twice" "$(bstat "$SIM_PORT_T" 'd["max_submissions_per_body"]')" "1"
expect_eq "openai: no online teacher call" "$(sim_stats "$SIM_PORT_T" | jq_py 'd["by_path"].get("/v1/chat/completions", 0)')" "0"
applied_once "$job" "openai"
expect_eq "openai: every batch request applied" "$(q "select count(*) from batch_requests where state='open'")" "0"
cost=$(q "select count(*) from calls where job_id=${job#job_} and error is null and abs(cost_usd - (tokens_in*1.25 + tokens_out*5)/1e6) > 1e-12")
expect_eq "openai: calls cost the batch price (half by default)" "$cost" "0"

# --- expiry of part of a batch: only those go again ------------------------------
variant exp "Expiry:"
before=$(bstat "$SIM_PORT_T" 'd["requests_total"]')
bconf "$SIM_PORT_T" '{"expire_next":3}'
job=$(job_spec oexp exp sim batch)
if wait_job "$job" done 180; then ok "openai expiry: the job finishes"; else nok "openai expiry: the job finishes" "$(api http://x/v1/jobs/$job)"; fi
twice=$(curl -s "http://127.0.0.1:$SIM_PORT_T/sim/batches" | jq_py 'sum(1 for v in d["bodies"].values() if v == 2)')
expect_eq "openai expiry: only the 3 expired requests went twice" "$twice" "3"
expect_eq "openai expiry: none more than twice" "$(bstat "$SIM_PORT_T" 'd["max_submissions_per_body"]')" "2"
expect_eq "openai expiry: status counts the resubmitted" "$(api "http://x/v1/jobs/$job" | jq_py 'd["batch"]["resubmitted"]')" "3"
applied_once "$job" "openai expiry"

# --- errored results (a 500 inside the batch): only those go again --------------
variant err "Errored:"
bconf "$SIM_PORT_T" '{"error_next":2}'
job=$(job_spec oerr err sim batch)
if wait_job "$job" done 180; then ok "openai errored: the job finishes"; else nok "openai errored: the job finishes" "$(api http://x/v1/jobs/$job)"; fi
twice=$(curl -s "http://127.0.0.1:$SIM_PORT_T/sim/batches" | jq_py 'sum(1 for v in d["bodies"].values() if v == 2)')
expect_eq "openai errored: only the 2 errored requests went twice (5 with the 3 expired)" "$twice" "5"
applied_once "$job" "openai errored"

# --- the dry-run estimate prices a batch job at the batch price ---------------------
printf '{"name":"e1","dataset":"gastro","kind":"stage1","teacher":"claude","eval_fraction":0}\n' >"$T/e1.json"
printf '{"name":"e2","dataset":"gastro","kind":"stage1","teacher":"claude","eval_fraction":0,"teacher_mode":"batch"}\n' >"$T/e2.json"
c1=$("$BIN/medthink" --json submit "$T/e1.json" --dry-run | jq_py 'd["steps"][0]["prompt_tokens"]*3 + d["steps"][0]["completion_tokens_max"]*15')
c2=$("$BIN/medthink" --json submit "$T/e2.json" --dry-run | jq_py 'round(d["steps"][0]["cost_usd_max"]*1e6)')
c3=$("$BIN/medthink" --json submit "$T/e2.json" --dry-run | jq_py 'd["steps"][0]["prompt_tokens"]*1 + d["steps"][0]["completion_tokens_max"]*5')
expect_eq "dry-run: batch jobs at batch_price_*" "$c2" "$c3"
[ "$c1" != "$c3" ] && ok "dry-run: online and batch prices differ" || nok "dry-run: online and batch prices differ"

# --- cancel ---------------------------------------------------------------------------
variant can "Cancel:"
bconf "$SIM_PORT_T" '{"hold":true}'
job=$(job_spec ocan can sim batch)
n0=$(q "select count(*) from batches where state='submitted'")
wait_for 60 sh -c "[ \$(sqlite3 '$db' \"select count(*) from batches where state='submitted' and job_id=${job#job_}\") -ge 1 ]" || nok "cancel: submitted"
"$BIN/medthink" cancel "$job" >/dev/null
if wait_job "$job" cancelled 60; then ok "cancel: the job is cancelled"; else nok "cancel: the job is cancelled" "$(api http://x/v1/jobs/$job)"; fi
if wait_for 30 sh -c "[ \$(curl -s http://127.0.0.1:$SIM_PORT_T/sim/batches | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"cancels\"])') -ge 1 ]"; then
  ok "cancel: the provider batch is cancelled"; else nok "cancel: the provider batch is cancelled"; fi
bconf "$SIM_PORT_T" '{"hold":false}'
: "$n0"

# --- two jobs asking the same requests: submitted once, paid once ------------------
variant dup "Twice:"
before=$(bstat "$SIM_PORT_T" 'd["requests_total"]')
bconf "$SIM_PORT_T" '{"hold":true}'
ja=$(job_spec da dup sim batch)
wait_for 60 sh -c "[ \$(sqlite3 '$db' \"select count(*) from batches where state='submitted' and job_id=${ja#job_}\") -ge 1 ]" || nok "two jobs: the first is submitted"
jb=$(job_spec db dup sim batch)
flying() { [ "$(api "http://x/v1/jobs/$jb" | jq_py 'd["counts"]["screen"]["in_flight"]')" = 48 ]; }
wait_for 60 flying || nok "two jobs: the second waits" "$(api "http://x/v1/jobs/$jb")"
bconf "$SIM_PORT_T" '{"hold":false}'
if wait_job "$ja" done 180 && wait_job "$jb" done 180; then ok "two jobs: both finish"; else nok "two jobs: both finish" "$(api http://x/v1/jobs/$jb)"; fi
distinct=$(q "select count(distinct hash) from calls where job_id in (${ja#job_}, ${jb#job_})")
expect_eq "two jobs: each request submitted once" "$(( $(bstat "$SIM_PORT_T" 'd["requests_total"]') - before ))" "$distinct"
expect_eq "two jobs: each request billed once" "$(q "select count(*) from (select hash, sum(tokens_in > 0) n from calls where job_id in (${ja#job_}, ${jb#job_}) group by hash) where n != 1")" "0"
applied_once "$jb" "two jobs (second)"

# --- Anthropic online ------------------------------------------------------------------
bconf "$SIM_PORT_A" '{"overloaded_next":2,"rate_limited_next":1}'
variant aon "Anthropic online:"
job=$(job_spec aon aon claude online)
if wait_job "$job" done 180; then ok "anthropic online: the job finishes"; else nok "anthropic online: the job finishes" "$(api http://x/v1/jobs/$job)"; fi
expect_eq "anthropic online: /v1/messages answered it" "$(bstat "$SIM_PORT_A" 'd["messages_total"] >= 48')" "True"
expect_eq "anthropic online: 529 and 429 were retried" "$(q "select count(*) from calls where job_id=${job#job_} and attempts > 1 and error is null")" "3"
applied_once "$job" "anthropic online"
if grep -q sk-ant-sim-key "$T/medthinkd.log" "$db" 2>/dev/null; then nok "anthropic: the key is nowhere in the log or the store"; else ok "anthropic: the key is nowhere in the log or the store"; fi

# --- Anthropic batch, SIGKILL between submit and completion, and expiry -------------------
variant abat "Anthropic batch:"
bconf "$SIM_PORT_A" '{"hold":true,"expire_next":2}'
job=$(job_spec abat abat claude batch)
wait_for 60 sh -c "[ \$(sqlite3 '$db' \"select count(*) from batches where state='submitted' and job_id=${job#job_}\") -ge 1 ]" && ok "anthropic batch: submitted" || nok "anthropic batch: submitted"
stop_daemon -KILL
start_daemon || { nok "daemon restarts"; exit 1; }
bconf "$SIM_PORT_A" '{"hold":false}'
if wait_job "$job" done 180; then ok "anthropic batch: the job finishes"; else nok "anthropic batch: the job finishes" "$(api http://x/v1/jobs/$job)"; fi
twice=$(curl -s "http://127.0.0.1:$SIM_PORT_A/sim/batches" | jq_py 'sum(1 for v in d["bodies"].values() if v == 2)')
expect_eq "anthropic batch: only the 2 expired went twice" "$twice" "2"
expect_eq "anthropic batch: none more than twice" "$(bstat "$SIM_PORT_A" 'd["max_submissions_per_body"]')" "2"
applied_once "$job" "anthropic batch"
cost=$(q "select count(*) from calls where job_id=${job#job_} and error is null and abs(cost_usd - (tokens_in*1 + tokens_out*5)/1e6) > 1e-12")
expect_eq "anthropic batch: calls cost batch_price_*" "$cost" "0"

stop_daemon
exit $_failed
