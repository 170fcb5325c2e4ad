#!/bin/sh
# medthink show JOB ITEM and prompt-preview on a finished stage-one job and
# a pipeline: the item, each step's task, artifact and the call behind it;
# 404s naming what is unknown.
. "$(dirname "$0")/lib.inc"

start_sim T --latency-ms 1 || exit 1
start_sim S --latency-ms 1 || exit 1
write_conf
start_daemon || { nok "daemon starts"; exit 1; }
"$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro >/dev/null
cat >"$T/s1.json" <<J
{"name":"s1","dataset":"gastro","kind":"stage1","teacher":"sim","eval_fraction":0.25,"seed":7}
J
job=$("$BIN/medthink" submit "$T/s1.json")
if wait_job "$job" done 120; then ok "stage1 job done"; else nok "stage1 job done" "$(api http://x/v1/jobs/$job)"; fi

# an item stage one kept (it has an explanation)
item=$(python3 - "$T/var" <<'PY' 2>/dev/null
import sqlite3, sys, glob
db = sqlite3.connect(sys.argv[1] + "/medthink.db")
print(db.execute("select i.ext_id from artifacts a join jobs j on j.id=a.job_id join items i on "
                 "i.dataset_id=j.dataset_id and i.seq=a.item_seq where a.kind='explanation' "
                 "order by a.item_seq limit 1").fetchone()[0])
PY
)
[ -n "$item" ] || item=gi-0001
"$BIN/medthink" --json show "$job" "$item" >"$T/story.json" 2>"$T/story.err"
python3 - "$T/story.json" "$item" >"$T/story.check" 2>&1 <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); item = sys.argv[2]
assert s["item"]["id"] == item, s["item"]
assert s["item"]["question"] and s["item"]["options"] and s["item"]["answer"], "question, options, gold"
steps = {x["step"]: x for x in s["steps"]}
assert set(steps) == {"screen", "explain"}, list(steps)
sc = steps["screen"]
assert sc["task"]["state"] == "done" and sc["task"]["attempts"] >= 1, sc["task"]
assert sc["artifact_kind"] == "verdict" and isinstance(sc["artifact"], dict), sc
c = sc["call"]
assert c["endpoint"] == "teacher.sim" and c["request"]["messages"], c
assert c["tokens_in"] > 0 and c["tokens_out"] > 0 and c["cost_usd"] > 0 and c["latency_ms"] >= 0, c
assert c["reply"]["choices"][0]["message"]["content"], c["reply"]
ex = steps["explain"]
assert ex["task"]["state"] == "done" and ex["artifact"] and ex["call"]["id"] != c["id"], ex
print("ok")
PY
if [ "$(tail -n 1 "$T/story.check")" = ok ]; then ok "show --json: item, tasks, artifacts, calls"; else nok "show --json: item, tasks, artifacts, calls" "$(cat "$T/story.check" "$T/story.err")"; fi

# by seq: the same item
seq=$(jq_py 'd["seq"]' <"$T/story.json")
id2=$("$BIN/medthink" --json show "$job" "$seq" | jq_py 'd["item"]["id"]')
expect_eq "show by seq names the same item" "$id2" "$item"

out=$("$BIN/medthink" show "$job" "$item")
expect_match "show prints the question" "$out" "^question: "
expect_match "show prints the gold answer" "$out" "^gold: "
expect_match "show prints the screen step" "$out" "^screen \\(stage1\\): done, [0-9]+ attempt"
expect_match "show prints the call behind it" "$out" "^  call [0-9]+: teacher\\.sim sim-teacher, [0-9]+ in \\+ [0-9]+ out tokens"

code=$(api_code GET "/v1/jobs/$job/items/no-such-item")
expect_eq "unknown item is 404" "$code" 404
expect_match "the 404 names the item" "$(cat "$T/last.json")" 'no-such-item'
code=$(api_code GET "/v1/jobs/job_999/items/$item")
expect_eq "unknown job is 404" "$code" 404
"$BIN/medthink" show "$job" no-such-item >/dev/null 2>"$T/err.txt"
rc=$?
[ $rc -ne 0 ] && grep -q 'no-such-item' "$T/err.txt" && ok "show of an unknown item exits non-zero naming it" || nok "show of an unknown item exits non-zero naming it" "rc $rc $(cat "$T/err.txt")"

# --- prompt-preview: the rendered request, nothing called
before=$(sim_stats "$SIM_PORT_T" | jq_py 'd["requests_total"]')
"$BIN/medthink" --json prompt-preview "$job" --step explain --item "$item" >"$T/pv.json"
after=$(sim_stats "$SIM_PORT_T" | jq_py 'd["requests_total"]')
expect_eq "prompt-preview calls nothing" "$after" "$before"
python3 - "$T/pv.json" "$T/story.json" >"$T/pv.check" 2>&1 <<'PY'
import json, sys
pv = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2]))
ex = [x for x in s["steps"] if x["step"] == "explain"][0]
sent = ex["call"]["request"]["messages"]
assert pv["step"] == "explain" and pv["template"] == "explain", pv
if ex["task"]["attempts"] == 1:
    assert pv["messages"] == sent, ("preview equals what was sent", pv["messages"], sent)
assert any(s["item"]["question"][:40] in json.dumps(m["content"], ensure_ascii=False) for m in pv["messages"]), "the question is in the prompt"
print("ok")
PY
if [ "$(tail -n 1 "$T/pv.check")" = ok ]; then ok "prompt-preview renders the step's messages"; else nok "prompt-preview renders the step's messages" "$(cat "$T/pv.check")"; fi
out=$("$BIN/medthink" prompt-preview "$job" --step screen --item "$item")
expect_match "prompt-preview prints the messages" "$out" "^--- (system|user)"
code=$(api_code GET "/v1/jobs/$job/prompt-preview?step=correct&item=$item")
expect_eq "a step the job does not run is 422" "$code" 422
code=$(api_code GET "/v1/jobs/$job/prompt-preview?step=nosuch&item=$item")
expect_eq "an unknown step is 422" "$code" 422
"$BIN/medthink" prompt-preview "$job" --item "$item" >/dev/null 2>&1
expect_eq "prompt-preview without --step is a usage error" "$?" 2

# --- a pipeline: the student's answer with its grade and rule, the chain
cat >"$T/p.json" <<J
{"name":"p1","dataset":"gastro","kind":"pipeline","teacher":"sim","student":"local",
 "eval_fraction":0.25,"seed":7,"train":"none"}
J
pj=$("$BIN/medthink" submit "$T/p.json")
if wait_job "$pj" done 180; then ok "pipeline job done"; else nok "pipeline job done" "$(api http://x/v1/jobs/$pj)"; fi
python3 - "$T/var" "$pj" >"$T/items.txt" 2>&1 <<'PY'
import sqlite3, sys, glob
db = sqlite3.connect(sys.argv[1] + "/medthink.db"); j = int(sys.argv[2].split("_")[-1])
def one(kind):
    r = db.execute("select i.ext_id from artifacts a join jobs j on j.id=a.job_id join items i on "
                   "i.dataset_id=j.dataset_id and i.seq=a.item_seq where a.job_id=? and a.kind=? "
                   "order by a.item_seq limit 1", (j, kind)).fetchone()
    return r[0] if r else ""
print(one("chain"), one("eval"))
PY
read -r chain_item eval_item <"$T/items.txt"
if [ -n "$chain_item" ]; then
  "$BIN/medthink" --json show "$pj" "$chain_item" >"$T/ps.json"
  python3 - "$T/ps.json" >"$T/ps.check" 2>&1 <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
steps = {x["step"]: x for x in s["steps"]}
assert {"screen", "explain", "answer", "correct"} <= set(steps), list(steps)
a = steps["answer"]
assert a["call"]["endpoint"] == "student.local", a["call"]
assert "grade" in json.dumps(a["artifact"]) or "rule" in json.dumps(a["artifact"]), a["artifact"]
assert steps["correct"]["artifact"] and steps["correct"]["call"]["endpoint"] == "teacher.sim", steps["correct"]
print("ok")
PY
  "$BIN/medthink" --json prompt-preview "$pj" --step correct --item "$chain_item" >"$T/pvc.json"
  python3 - "$T/pvc.json" "$T/ps.json" >"$T/pvc.check" 2>&1 <<'PY'
import json, sys
pv = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2]))
steps = {x["step"]: x for x in s["steps"]}
reply = steps["answer"]["artifact"]["reply"]
assert reply[:60] in json.dumps(pv["messages"], ensure_ascii=False)[:100000] or reply[:30] in "".join(m["content"] for m in pv["messages"] if isinstance(m["content"], str)), "the correct step renders the student's answer"
print("ok")
PY
  if [ "$(tail -n 1 "$T/pvc.check")" = ok ]; then ok "prompt-preview of correct renders the student's answer"; else nok "prompt-preview of correct renders the student's answer" "$(cat "$T/pvc.check")"; fi
  if [ "$(tail -n 1 "$T/ps.check")" = ok ]; then ok "pipeline show: answer with its grade, the chain"; else nok "pipeline show: answer with its grade, the chain" "$(cat "$T/ps.check"; head -c 3000 "$T/ps.json")"; fi
else
  nok "pipeline show: an item with a chain" "$(cat "$T/items.txt")"
fi
if [ -n "$eval_item" ]; then
  st=$("$BIN/medthink" --json show "$pj" "$eval_item" | jq_py '",".join(x["step"] for x in d["steps"])')
  expect_match "an eval item's story has its eval step" "$st" "^eval"
fi
stop_daemon
[ "$_failed" = 0 ]
