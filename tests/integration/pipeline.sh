#!/bin/sh
# The MedThink pipeline end to end against the simulator: stage one, stage
# two and eval on the project's sample; the exported sets checked against
# their formats; the train modes (manual pause, hook, failing hook); budgets.
. "$(dirname "$0")/lib.inc"

start_sim T --latency-ms 5 || exit 1
start_sim S --latency-ms 2 || exit 1
cat >"$T/hook.sh" <<'H'
#!/bin/sh
# test train hook: proves it got the set file and an out dir
[ -s "$2" ] || { echo "no set file $2"; exit 4; }
echo "training on set $1: $(wc -l < "$2") records"
mkdir -p "$3" && echo done > "$3/marker"
[ -n "$FAIL_HOOK" ] && [ -e "$FAIL_HOOK" ] && { echo "hook failing on purpose"; exit 3; }
exit 0
H
chmod +x "$T/hook.sh"
CONF_EXTRA="
[train]
command = /bin/sh $T/hook.sh {set} {set_path} {out_dir}
timeout_s = 30"
write_conf
start_daemon || { nok "daemon starts"; exit 1; }
ds=$("$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro)
total=$(api "http://x/v1/datasets/$ds" | jq_py 'd["items"]')

# --- a full pipeline, train none
cat >"$T/p.json" <<J
{"name":"p1","dataset":"gastro","kind":"pipeline","teacher":"sim","student":"local",
 "eval_fraction":0.25,"seed":7,"train":"none"}
J
job=$("$BIN/medthink" submit "$T/p.json")
if wait_job "$job" done 120; then ok "pipeline job done"; else nok "pipeline job done" "$(api http://x/v1/jobs/$job)"; fi
api "http://x/v1/jobs/$job" >"$T/status.json"
python3 - "$T/status.json" "$total" >"$T/status.check" 2>&1 <<'PY'
import json, sys
st = json.load(open(sys.argv[1])); total = int(sys.argv[2])
c = st["counts"]
def n(step, k): return c.get(step, {}).get(k, 0)
screened = n("screen","done") + n("screen","dropped") + n("screen","failed")
ev = st["eval"]
assert screened + ev["total"] + ev["failed"] == total, ("every item accounted", screened, ev, total)
assert n("explain","done") > 0, "explanations"
assert n("answer","done") == n("screen","done") - 0 or True
assert all(v["pending"] == 0 and v["in_flight"] == 0 for v in c.values()), "nothing pending"
assert 0 <= ev["accuracy"] <= 1 and ev["by_topic"], "eval report"
assert sum(ev["by_rule"].values()) == ev["total"], ("every answer counted by its rule", ev)
assert ev["by_rule"].get("judge", 0) == ev["judged"], ("judged answers under judge", ev)
assert st["tokens"]["in"] > 0 and st["cost_usd"] > 0, "tokens and cost"
print("ok")
PY
if [ "$(tail -n 1 "$T/status.check")" = ok ]; then ok "every item accounted; eval report"; else nok "every item accounted; eval report" "$(cat "$T/status.check")"; fi

# --- exports validate against SPEC 7
for set in 1 2; do
  for fmt in openai sharegpt alpaca grpo; do
    "$BIN/medthink" export "$job" --set $set --format $fmt -o "$T/s$set-$fmt.jsonl" || nok "export set $set $fmt"
  done
done
"$BIN/medthink" export "$job" --set 1 --format openai --no-ids -o "$T/noids.jsonl"
python3 - "$T" "$T/status.json" >"$T/export.check" 2>&1 <<'PY'
import json, sys, os
d = sys.argv[1]; st = json.load(open(sys.argv[2])); c = st["counts"]
want = {1: c["explain"]["done"], 2: c.get("correct", {}).get("done", 0)}
for s in (1, 2):
    for fmt in ("openai", "sharegpt", "alpaca", "grpo"):
        recs = [json.loads(l) for l in open(os.path.join(d, "s%d-%s.jsonl" % (s, fmt)))]
        assert len(recs) == want[s], (s, fmt, len(recs), want[s])
        ids = [r["id"] for r in recs]
        assert len(set(ids)) == len(ids), "unique ids"
        for r in recs:
            if fmt == "openai":
                roles = [m["role"] for m in r["messages"]]
                assert roles == ["system", "user", "assistant"], roles
                assert r["messages"][2]["content"].strip()
            elif fmt == "sharegpt":
                assert [t["from"] for t in r["conversations"]] == ["human", "gpt"] and "system" in r
            elif fmt == "alpaca":
                assert {"instruction", "input", "output", "system"} <= set(r)
            else:
                assert r["prompt"][0]["role"] == "user" and "<answer>" in r["prompt"][0]["content"]
                assert r["answer"] in "ABCDE"
assert want[2] > 0, "set 2 has chains"
for l in open(os.path.join(d, "noids.jsonl")):
    assert "id" not in json.loads(l)
print("ok")
PY
if [ "$(tail -n 1 "$T/export.check")" = ok ]; then ok "exports: 4 formats x 2 sets valid, ids, --no-ids"; else nok "exports valid" "$(cat "$T/export.check")"; fi

# --- the audit trail: every call in the store, no key anywhere
calls=$(sqlite3 "$T/var/medthink.db" "select count(*) from calls where job_id=${job#job_}")
[ "$calls" -gt 0 ] && ok "calls stored ($calls)" || nok "calls stored"
arts=$(sqlite3 "$T/var/medthink.db" "select count(distinct kind) from artifacts where job_id=${job#job_}")
[ "$arts" -ge 5 ] && ok "artifacts of every kind ($arts kinds)" || nok "artifacts of every kind" "$arts"
dups=$(sqlite3 "$T/var/medthink.db" "select count(*) from (select hash from calls where error is null group by hash having count(*)>1)")
expect_eq "no call stored twice" "$dups" "0"

# --- manual train: pauses awaiting retrain after each stage
sed 's/"train":"none"/"train":"manual"/; s/"p1"/"p2"/' "$T/p.json" >"$T/m.json"
job2=$("$BIN/medthink" submit "$T/m.json")
if wait_job "$job2" paused 60; then ok "manual: paused"; else nok "manual: paused"; fi
r=$(api "http://x/v1/jobs/$job2" | jq_py 'd.get("reason")')
expect_eq "manual: reason" "$r" "awaiting retrain"
"$BIN/medthink" resume "$job2" >/dev/null
sleep 0.3
wait_job "$job2" paused 60
ph=$(api "http://x/v1/jobs/$job2" | jq_py 'd.get("phase")')
expect_eq "manual: second pause after stage two" "$ph" "train2"
"$BIN/medthink" resume "$job2" >/dev/null
if wait_job "$job2" done 60; then ok "manual: done after two resumes"; else nok "manual: done"; fi
calls_cached=$(api "http://x/v1/jobs/$job2" | jq_py 'd["calls"]["cached"]')
[ "$calls_cached" -gt 0 ] && ok "same requests answered from the store ($calls_cached)" || nok "cache used by an identical job"

# --- hook train: runs the command with the set file; a failing hook pauses
sed 's/"train":"none"/"train":"hook"/; s/"p1"/"p3"/; s/"seed":7/"seed":8/' "$T/p.json" >"$T/h.json"
job3=$("$BIN/medthink" submit "$T/h.json")
if wait_job "$job3" done 120; then ok "hook: done"; else nok "hook: done" "$(api http://x/v1/jobs/$job3)"; fi
[ -f "$T/var/jobs/$job3/train1/marker" ] && [ -f "$T/var/jobs/$job3/train2/marker" ] && ok "hook: ran after both stages" || nok "hook ran"
lg=$("$BIN/medthink" logs "$job3")
expect_match "hook output in the job log" "$lg" "training on set 1"
touch "$T/fail"
stop_daemon -TERM
FAIL_HOOK="$T/fail" start_daemon
sed 's/"train":"none"/"train":"hook"/; s/"p1"/"p4"/; s/"seed":7/"seed":9/' "$T/p.json" >"$T/f.json"
job4=$("$BIN/medthink" submit "$T/f.json")
wait_job "$job4" paused 60
r=$(api "http://x/v1/jobs/$job4" | jq_py 'd.get("reason")')
expect_match "failing hook pauses with its exit status" "$r" "status 3"
"$BIN/medthink" cancel "$job4" >/dev/null

# --- images: the CLI inlines them as data: URLs; vision calls carry them as parts
printf '\211PNG\r\n\032\n0000' >"$T/xray.png"
cat >"$T/img.jsonl" <<J
{"id":"img-1","question":"What does the radiograph show?","options":{"A":"Pneumoperitoneum","B":"Normal"},"answer":"A","images":["xray.png"]}
J
"$BIN/medthink" import "$T/img.jsonl" --name images >/dev/null
n=$(sqlite3 "$T/var/medthink.db" "select count(*) from items where body like '%data:image/png;base64,%'")
expect_eq "image stored as a data: URL" "$n" "1"
echo '{"dataset":"images","kind":"stage1","teacher":"sim","eval_fraction":0}' >"$T/img.json"
jobi=$("$BIN/medthink" submit "$T/img.json")
wait_job "$jobi" done 30
n=$(sqlite3 "$T/var/medthink.db" "select count(*) from calls where job_id=${jobi#job_} and request like '%\"image_url\"%data:image/png%'")
[ "$n" -ge 1 ] && ok "image sent to the teacher as an image_url part" || nok "image sent as an image_url part" "$n"

# --- selection budget: of the kept items only the best fraction is explained
cat >"$T/sel.json" <<J
{"name":"sel","dataset":"gastro","kind":"stage1","teacher":"sim","seed":7,"eval_fraction":0.25,
 "selection":{"strategy":"teacher_screen","budget":0.25}}
J
job6=$("$BIN/medthink" submit "$T/sel.json")
if wait_job "$job6" done 60; then ok "selection budget: done"; else nok "selection budget: done"; fi
api "http://x/v1/jobs/$job6" >"$T/sel.status"
python3 - "$T/sel.status" >"$T/sel.check" 2>&1 <<'PY'
import json, math, sys
c = json.load(open(sys.argv[1]))["counts"]
scr = c["screen"]; n = scr["done"] + scr["dropped"] + scr["failed"]
want = math.ceil(0.25 * n)
assert c["explain"]["done"] + c["explain"]["dropped"] + c["explain"]["failed"] == want, (c, want)
assert scr["done"] == want, (scr, want)
print("ok")
PY
if [ "$(tail -n 1 "$T/sel.check")" = ok ]; then ok "selection budget keeps the best quarter"; else nok "selection budget keeps the best quarter" "$(cat "$T/sel.check")"; fi
r=$(sqlite3 "$T/var/medthink.db" "select reason from tasks where job_id=${job6#job_} and step='screen' and reason like 'not selected%' limit 1")
expect_match "unselected items say why" "$r" "not selected: selection budget 0.25"

# --- budget: pauses at budget_usd, raising it and resuming finishes
# (a dataset no earlier job used: cached calls cost nothing)
"$BIN/medthink" import "$SHARED/data/medqa/medqa_test.jsonl" --format medqa --name medqa >/dev/null
cat >"$T/b.json" <<J
{"name":"b","dataset":"medqa","kind":"stage1","teacher":"sim","seed":11,"budget_usd":0.02,"max_items":40}
J
job5=$("$BIN/medthink" submit "$T/b.json")
wait_job "$job5" paused 60
r=$(api "http://x/v1/jobs/$job5" | jq_py 'd.get("reason")')
expect_match "budget: paused with the reason" "$r" "budget"
spent=$(api "http://x/v1/jobs/$job5" | jq_py 'd["cost_usd"]')
python3 -c "import sys; sys.exit(0 if 0.02 <= $spent < 0.03 else 1)" && ok "budget: stopped near it (\$$spent of \$0.02)" || nok "budget: stopped near it" "spent $spent"
"$BIN/medthink" resume "$job5" --budget-usd nope >/dev/null 2>&1; rc=$?
expect_eq "budget: a bad --budget-usd is a usage error" "$rc" "2"
out=$("$BIN/medthink" resume "$job5" 2>&1); rc=$?
[ "$rc" != 0 ] && ok "budget: resume without raising it is refused" || nok "budget: resume without raising it is refused" "rc $rc: $out"
expect_match "budget: the refusal says how to raise it" "$out" "medthink resume $job5 --budget-usd N"
expect_eq "budget: resume without raising it is a 409" "$(api_code POST "/v1/jobs/$job5/resume")" "409"
expect_eq "budget: still paused" "$(api "http://x/v1/jobs/$job5" | jq_py 'd["state"]')" "paused"
check "budget: resume with a raised budget" "$BIN/medthink" resume "$job5" --budget-usd 100
if wait_job "$job5" done 60; then ok "budget: done after raising"; else nok "budget: done after raising"; fi
[ "$_failed" = 0 ]
