#!/bin/sh
# The 3DS selection end to end against the simulator, on constructed items
# (markers: tests/sim/README.md): stage A drops the ratings under the
# threshold, the 25-75 percentile window of the three difficulties keeps
# four items, and k-center greedy on their embeddings never takes both of
# two identical ones. Then: the refusal of a student without prompt
# logprobs, and a daemon SIGKILLed while the selection is being scored.
. "$(dirname "$0")/lib.inc"

start_sim T --contradict-rate 0 || exit 1
start_sim S || exit 1
start_sim N --no-prompt-logprobs 1 || exit 1
CONF_EXTRA="
[embedder.e]
base_url = http://127.0.0.1:$SIM_PORT_S/v1
model = sim-embed

[student.llamacpp]
base_url = http://127.0.0.1:$SIM_PORT_N/v1
model = sim-student"
write_conf
start_daemon || { nok "daemon starts"; exit 1; }

# r1..r10 pass stage A; the difficulties grow with the index, so ranks 3-6
# (r4..r7) are inside the 25-75 window of all three; r4 and r5 have the
# same embedding. x1 and x2 are rated under 85.
: >"$T/d.jsonl"
emb() { case $1 in r4|r5) echo "1,0" ;; r6) echo "0,1" ;; r7) echo "-1,0" ;; *) echo "0,-1" ;; esac; }
i=0
for id in r1 r2 r3 r4 r5 r6 r7 r8 r9 r10 x1 x2; do
  i=$((i + 1))
  case $id in x1) rate=50 ;; x2) rate=84 ;; *) rate=$((85 + i)) ;; esac
  v=$(python3 -c "print('%.1f' % ($i * 0.3))")
  printf '{"id":"%s","question":"Patient %s sim-rate=%s sim-lp=%s sim-la=%s sim-lg=%s sim-emb=%s : what is the diagnosis?","options":{"A":"Gastritis","B":"Pancreatitis"},"answer":"B"}\n' \
    "$id" "$id" "$rate" "$v" "$v" "$v" "$(emb $id)" >>"$T/d.jsonl"
done
"$BIN/medthink" import "$T/d.jsonl" --name s3set >/dev/null || nok "import"

# --- refusal: a student that gives no prompt logprobs ------------------------
cat >"$T/n.json" <<J
{"dataset":"s3set","kind":"stage1","teacher":"sim","student":"llamacpp","embedder":"e",
 "eval_fraction":0,"selection":{"strategy":"3ds","budget":3}}
J
code=$(api_code POST /v1/jobs -H 'Content-Type: application/json' --data-binary "@$T/n.json")
expect_eq "submit with a student without prompt logprobs is refused (422)" "$code" "422"
msg=$(jq_py 'd["error"]["message"]' <"$T/last.json")
expect_match "the refusal names the engine and the capability" "$msg" 'student engine "student.llamacpp".*does not give prompt logprobs.*echo:true, logprobs:1.*3ds needs them'
expect_eq "the refusal's code and field" "$(jq_py 'd["error"]["code"] + " " + d["error"]["field"]' <"$T/last.json")" "missing_capability student"
expect_eq "no job was created" "$(api http://x/v1/jobs | jq_py 'len(d) if isinstance(d, list) else len(d.get("jobs", []))')" "0"
out=$("$BIN/medthink" submit "$T/n.json" 2>&1) && nok "the CLI submit fails too" || expect_match "the CLI shows the refusal" "$out" "does not give prompt logprobs"

# --- the 3DS job ---------------------------------------------------------------
cat >"$T/j.json" <<J
{"name":"s3","dataset":"s3set","kind":"stage1","teacher":"sim","student":"local","embedder":"e",
 "eval_fraction":0,"seed":11,
 "selection":{"strategy":"3ds","budget":3,"rating_threshold":85,"percentiles":[25,75]}}
J
job=$("$BIN/medthink" submit "$T/j.json") || nok "submit 3ds stage1" "$job"
if wait_job "$job" done 60; then ok "3ds stage1 job finishes"; else nok "3ds stage1 job finishes" "$(api http://x/v1/jobs/$job)"; fi
st=$(api "http://x/v1/jobs/$job")
expect_eq "summary: rated, kept by the rating, in the window, selected" \
  "$(printf '%s' "$st" | jq_py '"%s %d %d %d %d %d" % (d["selection"]["label"], d["selection"]["rated"], d["selection"]["kept_by_rating"], d["selection"]["in_window"], d["selection"]["budget_items"], d["selection"]["selected"])')" \
  "3DS 12 10 4 3 3"
expect_eq "the window of each difficulty" "$(printf '%s' "$st" | jq_py '"%.3f %.3f %.3f %.3f" % (d["selection"]["windows"]["correctness"][0], d["selection"]["windows"]["correctness"][1], d["selection"]["windows"]["confidence"][0], d["selection"]["windows"]["confidence"][1])')" \
  "0.975 2.325 0.975 2.325"
db="$T/var/medthink.db"
jn=${job#job_}
ds=$(sqlite3 "$db" "select dataset_id from jobs where id=$jn")
sel=$(sqlite3 "$db" "select i.ext_id from artifacts a join items i on i.dataset_id=$ds and i.seq=a.item_seq where a.job_id=$jn and a.kind='explanation' order by i.ext_id" | tr '\n' ',')
case $sel in
  r4,r6,r7,|r5,r6,r7,) ok "the window and k-center decide the set ($sel)" ;;
  *) nok "the window and k-center decide the set" "got $sel" ;;
esac
drop=$(sqlite3 "$db" "select reason from tasks t join items i on i.dataset_id=$ds and i.seq=t.item_seq where t.job_id=$jn and t.step='s3_rate' and i.ext_id='x2'")
expect_match "stage A drops a rating under the threshold" "$drop" "rating 84 is below the threshold 85"
api "http://x/v1/jobs/$job/export?set=1&format=alpaca" >"$T/set1.jsonl"
expect_eq "every record carries its 3DS scores" "$(python3 -c '
import json,sys
r=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(len(r), all(x["selection"]["label"]=="3DS" and x["selection"]["in_window"] and x["selection"]["kcenter_order"] in (1,2,3) for x in r), sorted(round(x["selection"]["correctness"],3) for x in r)[-1])' "$T/set1.jsonl")" "3 True 2.1"
expect_eq "scores of every item that passed stage A" "$(sqlite3 "$db" "select count(*) from artifacts where job_id=$jn and kind='selection'")" "10"
api "http://x/v1/jobs/$job/export?set=1&format=alpaca&ids=0" | grep -q '"selection"' && nok "ids=0 leaves the scores out" || ok "ids=0 leaves the scores out"

# --- SIGKILL while the items are scored ----------------------------------------
# the student holds its replies after 5 (work-paced): the daemon is killed with
# scoring calls in flight, restarted, and the job ends with the same choice.
curl -s -o /dev/null -X POST -d '{"hold-after":5}' "http://127.0.0.1:$SIM_PORT_S/sim/config"
# a copy of the items (other prompts, so nothing is answered from the store)
sed 's/what is the diagnosis/what is the likely diagnosis/' "$T/d.jsonl" >"$T/k.jsonl"
"$BIN/medthink" import "$T/k.jsonl" --name s3copy >/dev/null || nok "import the copy"
sed 's/"s3set"/"s3copy"/; s/"name":"s3"/"name":"s3kill"/' "$T/j.json" >"$T/k.json"
job3=$("$BIN/medthink" submit "$T/k.json") || nok "submit 3ds for the kill"
i=0
while [ "$(sim_stats "$SIM_PORT_S" | jq_py 'd["gate_left"]')" -gt 0 ] && [ "$(sim_stats "$SIM_PORT_S" | jq_py 'd["requests_total"]')" -lt 200 ]; do
  i=$((i + 1)); [ $i -gt 1200 ] && break
  sleep 0.05
done
inflight=$(api "http://x/v1/jobs/$job3" | jq_py 'sum(v["in_flight"] for v in d["counts"].values())')
stop_daemon -KILL
expect_match "killed with scoring calls in flight" "$inflight" "^[1-9]"
curl -s -o /dev/null -X POST -d '{"hold-after":0}' "http://127.0.0.1:$SIM_PORT_S/sim/config"
start_daemon || { nok "restart after the kill"; exit 1; }
if wait_job "$job3" done 60; then ok "the killed 3ds job finishes after a restart"; else nok "the killed 3ds job finishes after a restart" "$(api http://x/v1/jobs/$job3)"; fi
j3=${job3#job_}
ds3=$(sqlite3 "$db" "select dataset_id from jobs where id=$j3")
sel3=$(sqlite3 "$db" "select i.ext_id from artifacts a join items i on i.dataset_id=$ds3 and i.seq=a.item_seq where a.job_id=$j3 and a.kind='explanation' order by i.ext_id" | tr '\n' ',')
expect_eq "the same seed makes the same choice after the kill" "$sel3" "$sel"
expect_eq "nothing pending after the kill" "$(sqlite3 "$db" "select count(*) from tasks where job_id=$j3 and state='pending'")" "0"
expect_eq "one selection artifact per scored item after the kill" "$(sqlite3 "$db" "select count(*) from artifacts where job_id=$j3 and kind='selection'")" "10"
exit $_failed
