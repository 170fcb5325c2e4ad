#!/bin/sh
# The paths users take (issue 16): log lines outside journald, a quiet
# --check-config, export before a set exists and while it grows, list's
# percentage of a paused pipeline, `export | head`, --json errors, import
# without --format, file-named import errors, duplicate dataset names.
. "$(dirname "$0")/lib.inc"

# --- the log: timestamps and level names, not <N>, when not under journald
write_conf
"$BIN/medthinkd" -c "$T/medthinkd.conf" --check-config >"$T/cc.out" 2>"$T/cc.err"
expect_eq "--check-config: exit 0" "$?" 0
expect_eq "--check-config: nothing on stderr" "$(cat "$T/cc.err")" ""
if grep -q '<[0-9]>' "$T/cc.out"; then nok "--check-config: no log lines on stdout" "$(cat "$T/cc.out")"; else ok "--check-config: no log lines on stdout"; fi
start_sim T --latency-ms 300 || exit 1
start_sim F --latency-ms 1 || exit 1
start_sim S --latency-ms 1 || exit 1
CONF_EXTRA="
[teacher.fast]
base_url = http://127.0.0.1:$SIM_PORT_F/v1
model = sim-teacher
max_concurrency = 32
price_in_per_mtok = 2.5
price_out_per_mtok = 10"
write_conf
start_daemon || { nok "daemon starts"; exit 1; }
first=$(head -n 1 "$T/medthinkd.log")
expect_match "log line: UTC timestamp and level" "$first" '^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z (info|warn|error|debug) '
if grep -q '^<[0-9]>' "$T/medthinkd.log"; then nok "log: no <N> prefix off the journal"; else ok "log: no <N> prefix off the journal"; fi
# under journald (JOURNAL_STREAM names stderr's dev:ino) lines keep <N>:
# a second daemon on the same state_dir logs one error and exits
: >"$T/jr.log"
JOURNAL_STREAM=$(stat -L -c '%d:%i' "$T/jr.log") "$BIN/medthinkd" -c "$T/medthinkd.conf" 2>>"$T/jr.log"
expect_match "journald: <3> prefix kept" "$(cat "$T/jr.log")" '^<3>another medthinkd'
JOURNAL_STREAM=1:2 "$BIN/medthinkd" -c "$T/medthinkd.conf" 2>"$T/nj.log"
expect_match "JOURNAL_STREAM of another file: timestamps" "$(cat "$T/nj.log")" '^20[0-9-]+T[0-9:.]+Z error another medthinkd'

mt() { "$BIN/medthink" "$@"; }
# 400 items: stage one on the slow teacher takes seconds, long enough to
# look at a job that is still in it
python3 - "$T/big.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(400):
        f.write(json.dumps({"id": "q%d" % i, "question": "Which organ makes insulin? (case %d)" % i,
                            "options": {"A": "liver", "B": "pancreas", "C": "spleen", "D": "kidney"},
                            "answer": "B", "topic": "endocrine"}) + "\n")
PY
mt import "$T/big.jsonl" --name big >/dev/null || nok "import big"
spec() { printf '{"name":"%s","dataset":"big","kind":"pipeline","teacher":"%s","student":"local","train":"manual","eval_fraction":0.1,"seed":3}' "$1" "$2" >"$T/$1.json"; }

# --- export before the set exists, and while it grows
spec slow sim
A=$(mt submit "$T/slow.json")
# a pipeline first evaluates its student (eval_baseline); stage one comes next
i=0
until [ "$(api "http://x/v1/jobs/$A" | jq_py 'd.get("phase")')" = stage1 ]; do
  i=$((i + 1)); [ $i -gt 600 ] && break; sleep 0.05
done
mt pause "$A" >/dev/null
mt export "$A" --set 2 --format openai >"$T/a2.out" 2>"$T/a2.err"; rc=$?
expect_eq "export set 2 during stage1: exit 1" "$rc" 1
expect_match "export set 2 during stage1: says where the job is" "$(cat "$T/a2.err")" "set 2 is made in stage2; $A is in stage1"
expect_eq "export set 2 during stage1: no records" "$(wc -c <"$T/a2.out" | tr -d ' ')" 0
code=$(api_code GET "/v1/jobs/$A/export?set=2&format=openai")
expect_eq "export set 2 during stage1: HTTP 409" "$code" 409
mt export "$A" --set 1 --format openai >"$T/a1.out" 2>"$T/a1.err"; rc=$?
expect_eq "export set 1 while stage1 runs: exit 0" "$rc" 0
expect_match "export set 1 while stage1 runs: a warning on stderr" "$(cat "$T/a1.err")" "warning: $A is paused in stage1: set 1 is still being made"
hdr=$(curl -s -D - -o /dev/null --unix-socket "$MEDTHINK_SOCKET" "http://x/v1/jobs/$A/export?set=1&format=openai" | tr -d '\r')
expect_match "export set 1 while stage1 runs: X-Medthink-Partial header" "$hdr" "^X-Medthink-Partial: $A is paused in stage1"
mt --json export "$A" --set 1 --format openai -o "$T/a1.jsonl" >"$T/a1j.out" 2>/dev/null
expect_match "export -o --json: the summary says partial" "$(cat "$T/a1j.out")" '"partial": *"'
mt cancel "$A" >/dev/null
mt export "$A" --set 2 --format openai >/dev/null 2>"$T/a2c.err"; rc=$?
expect_eq "export set 2 of a job cancelled in stage1: exit 1" "$rc" 1
expect_match "export set 2 of a job cancelled in stage1: says so" "$(cat "$T/a2c.err")" "$A was cancelled in stage1"

# --- a pipeline paused for retraining after stage one
spec fast fast
B=$(mt submit "$T/fast.json")
i=0
until [ "$(api "http://x/v1/jobs/$B" | jq_py 'd.get("reason")')" = "awaiting retrain" ]; do
  i=$((i + 1)); [ $i -gt 600 ] && break; sleep 0.1
done
expect_eq "pipeline pauses awaiting retrain" "$(api "http://x/v1/jobs/$B" | jq_py 'd.get("phase")')" train1
line=$(mt list | grep "^$B ")
# the work phases are eval_baseline, stage1, eval_stage1, stage2, eval: 2 of 5 done
expect_match "list: a pipeline paused after stage one is at 40.0%" "$line" " 40\.0% "
mt export "$B" --set 1 --format openai >"$T/b1.jsonl" 2>"$T/b1.err"; rc=$?
expect_eq "export set 1 after stage one: exit 0" "$rc" 0
expect_eq "export set 1 after stage one: no warning" "$(cat "$T/b1.err")" ""
mt export "$B" --set 2 --format openai >/dev/null 2>"$T/b2.err"; rc=$?
expect_eq "export set 2 awaiting retrain: exit 1" "$rc" 1
expect_match "export set 2 awaiting retrain: says where the job is" "$(cat "$T/b2.err")" "set 2 is made in stage2; $B is in train1"

# --- export | a reader that leaves early: no "Broken pipe", as cat
size=$(wc -c <"$T/b1.jsonl" | tr -d ' ')
if [ "$size" -gt 200000 ]; then ok "set 1 is larger than a pipe buffer ($size bytes)"; else nok "set 1 is larger than a pipe buffer" "$size bytes"; fi
( mt export "$B" --set 1 --format openai 2>"$T/pipe.err"; echo $? >"$T/pipe.rc" ) | python3 -c 'import sys; sys.stdin.buffer.read(10)'
expect_eq "export | head: nothing on stderr" "$(cat "$T/pipe.err")" ""
expect_eq "export | head: killed by SIGPIPE, as cat" "$(cat "$T/pipe.rc")" 141
( mt logs "$B" 2>"$T/lpipe.err"; echo $? >"$T/lpipe.rc" ) | python3 -c 'import sys; sys.stdin.buffer.read(1)'
if [ -s "$T/lpipe.err" ]; then nok "logs | head: nothing on stderr" "$(cat "$T/lpipe.err")"; else ok "logs | head: nothing on stderr"; fi
mt cancel "$B" >/dev/null

# --- import without --format: the daemon tells the layout
mt import "$SHARED/data/medqa/medqa_test.jsonl" >"$T/mq.out" 2>"$T/mq.err"; rc=$?
expect_eq "medqa without --format: exit 0" "$rc" 0
expect_match "medqa without --format: says how it was read" "$(cat "$T/mq.err")" "medqa_test.jsonl: read as medqa \(no --format given\)"
expect_eq "medqa without --format: stored as medqa, every item" \
  "$(api "http://x/v1/datasets/$(cat "$T/mq.out")" | jq_py '"%s %s" % (d["format"], d["items"])')" "medqa 1273"
mt import "$SHARED/data/pubmedqa/ori_pqal.json" --name pqal >"$T/pq.out" 2>"$T/pq.err"; rc=$?
expect_eq "pubmedqa without --format: exit 0" "$rc" 0
expect_eq "pubmedqa without --format: stored as pubmedqa" \
  "$(api "http://x/v1/datasets/$(cat "$T/pq.out")" | jq_py '"%s %s" % (d["format"], d["items"])')" "pubmedqa 1000"
printf '{"question":"q","options":{"A":"a","B":"b"},"answer_idx":"A","opa":"a","opb":"b","opc":"c","opd":"d","cop":1}\n' >"$T/amb.jsonl"
mt import "$T/amb.jsonl" >/dev/null 2>"$T/amb.err"; rc=$?
expect_eq "a file two layouts read: exit 2 (give --format)" "$rc" 2
expect_match "a file two layouts read: names them" "$(cat "$T/amb.err")" "could be medqa or medmcqa"

# --- an atomic import that fails names the file and lists the bad lines
python3 - "$T/bad.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(60):
        r = {"id": "b%d" % i, "question": "q%d" % i, "options": {"A": "x", "B": "y"}, "answer": "A"}
        if i % 3 == 1 or i >= 45:
            r["answer"] = "Z"
        f.write(json.dumps(r) + "\n")
PY
nbad=$(python3 -c "print(sum(1 for i in range(60) if i % 3 == 1 or i >= 45))")
mt import "$T/bad.jsonl" --format native >/dev/null 2>"$T/bad.err"; rc=$?
expect_eq "atomic import with bad lines: exit 1" "$rc" 1
if grep -q 'body:' "$T/bad.err"; then nok "atomic import: no \"body:\"" "$(head -n 3 "$T/bad.err")"; else ok "atomic import: no \"body:\""; fi
expect_eq "atomic import: the first 20 bad lines, each naming the file" \
  "$(grep -c "^medthink: import: $T/bad.jsonl: line [0-9]*: " "$T/bad.err")" 20
expect_match "atomic import: the first one is line 2" "$(head -n 1 "$T/bad.err")" "bad.jsonl: line 2: answer \"Z\" is not one of the option keys"
expect_match "atomic import: a count of the rest" "$(cat "$T/bad.err")" "bad.jsonl: \.\.\. and $((nbad - 20)) more bad lines"
expect_match "atomic import: nothing stored, and what to do" "$(tail -n 1 "$T/bad.err")" "nothing stored: $nbad bad lines .*--skip-invalid"

# --- dataset names are unique
mt import "$top/examples/gastro-sample.jsonl" --name g1 >/dev/null
mt import "$top/examples/gastro-sample.jsonl" --name g1 >/dev/null 2>"$T/dup.err"; rc=$?
expect_eq "a --name already taken: exit 1" "$rc" 1
expect_match "a --name already taken: says so" "$(cat "$T/dup.err")" 'a dataset named "g1" already exists \(ds_[0-9]+\); choose another name'
code=$(api_code POST "/v1/datasets?name=g1" --data-binary @"$top/examples/gastro-sample.jsonl")
expect_eq "a name already taken: HTTP 409" "$code" 409
d1=$(mt import "$top/examples/gastro-sample.jsonl")
d2=$(mt import "$top/examples/gastro-sample.jsonl" 2>"$T/dup2.err")
expect_eq "the default name, twice: made unique" \
  "$(api "http://x/v1/datasets/$d1" | jq_py 'd["name"]') $(api "http://x/v1/datasets/$d2" | jq_py 'd["name"]')" "gastro-sample gastro-sample-2"
expect_match "the default name, twice: said on stderr" "$(cat "$T/dup2.err")" "a dataset named gastro-sample exists; this one is gastro-sample-2"
