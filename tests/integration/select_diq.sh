#!/bin/sh
# The DIQ-like selection end to end against the simulator: on constructed
# items (the simulator reads sim-diff=, sim-la= and sim-emb= markers, see
# tests/sim/README.md) the quadrant order decides which items go on; every
# score is stored, summarized in the status and carried in the export; a
# pipeline job's stage two takes exactly the selected items.
. "$(dirname "$0")/lib.inc"

start_sim T --contradict-rate 0 || exit 1
start_sim S || exit 1
CONF_EXTRA="
[embedder.e]
base_url = http://127.0.0.1:$SIM_PORT_S/v1
model = sim-embed
max_concurrency = 4"
write_conf
start_daemon || { nok "daemon starts"; exit 1; }

# overall difficulty and loss on the gold answer (every embedding the same
# direction, so the influence proxy is the loss): cuts 3.5 and 2.25;
# Q1 = d7 (3.5), d1 (3.0), d4 (2.5); Q2 = d3 (4.0); Q3 = d2; Q4 = d5 d6 d8.
# A budget of 4 takes Q1 then the best of Q2, though d3 has the most influence.
: >"$T/d.jsonl"
for row in "d1 5 3.0" "d2 4 1.0" "d3 2 4.0" "d4 5 2.5" "d5 1 0.5" "d6 3 2.0" "d7 4 3.5" "d8 2 1.5"; do
  set -- $row
  printf '{"id":"%s","question":"Case %s sim-diff=3/3/%s sim-la=%s sim-emb=1,0.5 : which drug is first line?","options":{"A":"Aspirin","B":"Heparin","C":"Warfarin"},"answer":"B"}\n' \
    "$1" "$1" "$2" "$3" >>"$T/d.jsonl"
done
"$BIN/medthink" import "$T/d.jsonl" --name diqset >/dev/null || nok "import"

cat >"$T/j.json" <<J
{"name":"diq1","dataset":"diqset","kind":"stage1","teacher":"sim","student":"local",
 "embedder":"e","eval_fraction":0,"seed":3,
 "selection":{"strategy":"diq","budget":4,"difficulty_percentile":50,"axis":"overall",
              "validation":{"fraction":0.001}}}
J
est=$(api -X POST --data-binary "@$T/j.json" "http://x/v1/jobs?dry_run=1")
expect_eq "the dry run lists the scoring steps and their endpoints" \
  "$(printf '%s' "$est" | jq_py '" ".join("%s:%s:%d" % (x["step"], x["endpoint"], x["calls"]) for x in d["steps"])')" \
  "explain:teacher.sim:4 diq_embed:embedder.e:8 diq_rate:teacher.sim:8 diq_loss:student.local:8"
job=$("$BIN/medthink" submit "$T/j.json") || nok "submit diq stage1" "$job"
if wait_job "$job" done 60; then ok "diq stage1 job finishes"; else nok "diq stage1 job finishes" "$(api http://x/v1/jobs/$job)"; fi
st=$(api "http://x/v1/jobs/$job")
expect_eq "status labels the selection DIQ-like" "$(printf '%s' "$st" | jq_py 'd["selection"]["label"]')" "DIQ-like"
expect_eq "no validation item (fraction 0.001 of 8)" "$(printf '%s' "$st" | jq_py 'd["selection"]["validation_items"]')" "0"
expect_eq "quadrant counts" "$(printf '%s' "$st" | jq_py '",".join("%s:%d/%d" % (q, d["selection"]["quadrants"][q]["items"], d["selection"]["quadrants"][q]["selected"]) for q in ("Q1","Q2","Q3","Q4"))')" \
  "Q1:3/3,Q2:1/1,Q3:1/0,Q4:3/0"
expect_eq "budget in the summary" "$(printf '%s' "$st" | jq_py '"%d of %d" % (d["selection"]["budget_items"], d["selection"]["candidates"])')" "4 of 8"
expect_match "medthink status shows the selection summary" "$("$BIN/medthink" status "$job")" \
  "selection DIQ-like: 4 of 8 scored items selected; Q1 3 \\(3 selected\\), Q2 1 \\(1 selected\\), Q3 1 \\(0 selected\\), Q4 3 \\(0 selected\\)"
"$BIN/medthink" export "$job" --set 1 --format openai -o "$T/set1.jsonl" >/dev/null 2>&1 || api "http://x/v1/jobs/$job/export?set=1&format=openai" >"$T/set1.jsonl"
expect_eq "the quadrant order decides the set" "$(python3 -c '
import json,sys
print(",".join(sorted(json.loads(l)["id"] for l in open(sys.argv[1]) if l.strip())))' "$T/set1.jsonl")" "d1,d3,d4,d7"
expect_eq "every record carries its DIQ-like scores" "$(python3 -c '
import json,sys
r=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(all(x["selection"]["label"]=="DIQ-like" and x["selection"]["selected"] and "influence" in x["selection"] and "quadrant" in x["selection"] for x in r), sorted((x["id"], x["selection"]["quadrant"], x["selection"]["rank"]) for x in r))' "$T/set1.jsonl")" \
  "True [('d1', 1, 2), ('d3', 2, 4), ('d4', 1, 3), ('d7', 1, 1)]"
db="$T/var/medthink.db"
expect_eq "a selection artifact per scored item" "$(sqlite3 "$db" "select count(*) from artifacts where job_id=${job#job_} and kind='selection'")" "8"
expect_eq "explanations only for the selected" "$(sqlite3 "$db" "select count(*) from artifacts where job_id=${job#job_} and kind='explanation'")" "4"
reason=$(sqlite3 "$db" "select reason from tasks where job_id=${job#job_} and step='diq_embed' and state='dropped' limit 1")
expect_match "the others are dropped with the reason" "$reason" "DIQ-like selection keeps 4 of 8"
calls_before=$(sim_stats "$SIM_PORT_S" | jq_py 'd["requests_total"]')

# a pipeline job: stage two answers exactly the selected items; the scoring
# calls are answered from the store (same requests), not sent again
cat >"$T/p.json" <<J
{"name":"diq2","dataset":"diqset","kind":"pipeline","teacher":"sim","student":"local",
 "embedder":"e","eval_fraction":0,"seed":3,"train":"none",
 "selection":{"strategy":"diq","budget":0.5,"validation":{"fraction":0.001}}}
J
job2=$("$BIN/medthink" submit "$T/p.json") || nok "submit diq pipeline" "$job2"
if wait_job "$job2" done 90; then ok "diq pipeline job finishes"; else nok "diq pipeline job finishes" "$(api http://x/v1/jobs/$job2)"; fi
ds=$(sqlite3 "$db" "select dataset_id from jobs where id=${job2#job_}")
got=$(sqlite3 "$db" "select i.ext_id from tasks t join items i on i.dataset_id=$ds and i.seq=t.item_seq where t.job_id=${job2#job_} and t.step='answer' order by i.ext_id" | tr '\n' ',')
expect_eq "stage two takes the selected items" "$got" "d1,d3,d4,d7,"
calls_after=$(sim_stats "$SIM_PORT_S" | jq_py 'd["requests_total"]')
echo "# student/embedder requests: $calls_before after stage1, $calls_after after the pipeline"
# the probe and the four stage-two answers; the 16 scoring calls come from the store
expect_eq "the pipeline's scoring calls are answered from the store" "$((calls_after - calls_before))" "5"
exit $_failed
