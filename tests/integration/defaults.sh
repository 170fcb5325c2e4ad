#!/bin/sh
# The paths a new user takes (issue 16): the daemon started outside the
# repository with no prompts_dir runs a job on the built-in templates; a
# prompts_dir that does not load is a startup error naming the path; a
# configuration without a [teacher.NAME] section starts, imports and lists
# datasets, and a job naming a teacher gets 422 naming the missing section.
. "$(dirname "$0")/lib.inc"

start_sim T --latency-ms 1 || exit 1
start_sim S --latency-ms 1 || exit 1
write_conf
# no prompts_dir: the built-in templates
grep -v '^prompts_dir' "$T/medthinkd.conf" >"$T/noprompts.conf"
mv "$T/noprompts.conf" "$T/medthinkd.conf"
mkdir -p "$T/away"

# start_daemon_in DIR: as start_daemon, from DIR (no conf/ there)
start_daemon_in() {
  (cd "$1" && exec "$BIN/medthinkd" -c "$T/medthinkd.conf") 2>>"$T/medthinkd.log" &
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

# --- 1. outside the repository, no prompts_dir
if start_daemon_in "$T/away"; then ok "daemon starts outside the repository"; else nok "daemon starts outside the repository"; exit 1; fi
ds=$(cd "$T/away" && "$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro)
cat >"$T/s1.json" <<J
{"name":"away","dataset":"gastro","kind":"stage1","teacher":"sim","seed":7}
J
if job=$(cd "$T/away" && "$BIN/medthink" submit "$T/s1.json" 2>"$T/submit.err"); then
  ok "submit with the built-in templates"
else
  nok "submit with the built-in templates" "$(cat "$T/submit.err")"
fi
if [ -n "$job" ] && wait_job "$job" done 120; then ok "job done on the built-in templates"; else nok "job done on the built-in templates" "$(api "http://x/v1/jobs/$job")"; fi
n=$(api "http://x/v1/jobs/$job" | jq_py 'd["counts"]["explain"]["done"]')
[ "${n:-0}" -gt 0 ] && ok "explanations written" || nok "explanations written" "explain done: $n"
stop_daemon -TERM
expect_eq "daemon stops cleanly" "$DAEMON_RC" "0"

# --- 1b. a prompts_dir that does not load: a startup error naming the path
awk -v l="prompts_dir = $T/no-such-prompts" '{print} /^\[daemon\]$/{print l}' "$T/medthinkd.conf" >"$T/bad.conf"
out=$(cd "$T/away" && "$BIN/medthinkd" -c "$T/bad.conf" 2>&1); rc=$?
expect_eq "missing prompts_dir: exit 1" "$rc" "1"
expect_match "missing prompts_dir: message names the path" "$out" "prompts_dir = $T/no-such-prompts: .*No such file"
mkdir -p "$T/partial"
cp "$top/conf/prompts/answer.txt" "$T/partial/"
awk -v l="prompts_dir = $T/partial" '{print} /^\[daemon\]$/{print l}' "$T/medthinkd.conf" >"$T/bad.conf"
out=$("$BIN/medthinkd" -c "$T/bad.conf" --check-config 2>&1); rc=$?
expect_eq "incomplete prompts_dir: --check-config exits 1" "$rc" "1"
expect_match "incomplete prompts_dir: names the missing template" "$out" "$T/partial: [a-z]+\.txt is missing"
out=$("$BIN/medthinkd" -c "$T/medthinkd.conf" --check-config 2>&1)
expect_match "--check-config: built-in templates" "$out" "prompts_dir not set: the built-in prompt templates"

# --- 2. no [teacher.NAME] section
cat >"$T/medthinkd.conf" <<CONF
[daemon]
socket = $T/medthinkd.sock
state_dir = $T/var2

[student.local]
base_url = http://127.0.0.1:$SIM_PORT_S/v1
model = sim-student
CONF
if start_daemon_in "$T/away"; then ok "daemon starts without a teacher"; else nok "daemon starts without a teacher"; exit 1; fi
expect_match "no teacher: warned at start" "$(cat "$T/medthinkd.log")" "no \[teacher.NAME\] section"
ds=$("$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro 2>&1)
expect_match "no teacher: import works" "$ds" '^ds_[0-9]+$'
n=$(api "http://x/v1/datasets/$ds" | jq_py 'd["items"]')
expect_eq "no teacher: dataset inspected" "$n" "48"
code=$(api_code POST /v1/jobs -H 'Content-Type: application/json' --data-binary @"$T/s1.json")
expect_eq "job naming a teacher: 422" "$code" "422"
msg=$(jq_py 'd["error"]["message"] + " field=" + str(d["error"].get("field"))' <"$T/last.json")
expect_match "422 names the missing section" "$msg" '^no \[teacher\.sim\] section in the daemon.s configuration field=teacher$'
out=$("$BIN/medthink" submit "$T/s1.json" 2>&1); rc=$?
expect_eq "medthink submit: exit 1" "$rc" "1"
expect_match "medthink submit: says which section" "$out" 'no \[teacher\.sim\] section'
stop_daemon -TERM
expect_eq "daemon without a teacher stops cleanly" "$DAEMON_RC" "0"
exit $_failed
