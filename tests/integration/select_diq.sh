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

# "validation":{"dataset":...}: the centroid comes from another imported
# dataset's embeddings, and none of the job's own items is held out. Equal
# difficulty; v1 v2 point along (1,0), w1 w2 along (0,1); the validation
# items along (0,1), queued after the job's own (task seqs 4, 5). Influence = loss x cosine to the centroid:
#   validation dataset, centroid (0,1): v1 0, v2 0, w1 1.5, w2 0.5 -> w1 w2
#   a held-out share of none (the candidates' centroid, (1,1)/sqrt2):
#   v1 1.41, w1 1.06, v2 0.71, w2 0.35 -> v1 w1
: >"$T/vv.jsonl"
for row in "v1 1,0 2.0" "v2 1,0 1.0" "w1 0,1 1.5" "w2 0,1 0.5"; do
  set -- $row
  printf '{"id":"%s","question":"Case %s sim-diff=3/3/3 sim-la=%s sim-emb=%s : which drug is first line?","options":{"A":"Aspirin","B":"Heparin","C":"Warfarin"},"answer":"B"}\n' \
    "$1" "$1" "$3" "$2" >>"$T/vv.jsonl"
done
"$BIN/medthink" import "$T/vv.jsonl" --name vvset >/dev/null || nok "import vvset"
: >"$T/val.jsonl"
for id in x1 x2; do
  printf '{"id":"%s","question":"Held %s sim-emb=0,1 : which drug?","options":{"A":"Aspirin","B":"Heparin"},"answer":"A"}\n' "$id" "$id" >>"$T/val.jsonl"
done
"$BIN/medthink" import "$T/val.jsonl" --name valset >/dev/null || nok "import valset"
vds=$(sqlite3 "$db" "select id from datasets where name='valset'")
for v in '{"dataset":"valset"}' '{"fraction":0.001}'; do
  cat >"$T/v.json" <<J
{"name":"diqv","dataset":"vvset","kind":"stage1","teacher":"sim","student":"local",
 "embedder":"e","eval_fraction":0,"seed":3,
 "selection":{"strategy":"diq","budget":2,"validation":$v}}
J
  case $v in *dataset*)
    expect_eq "the dry run counts the validation dataset's embeddings" \
      "$(api -X POST --data-binary "@$T/v.json" "http://x/v1/jobs?dry_run=1" | jq_py '" ".join("%s:%d" % (x["step"], x["calls"]) for x in d["steps"] if x["step"].startswith("diq"))')" \
      "diq_embed:6 diq_rate:4 diq_loss:4";;
  esac
  jv=$("$BIN/medthink" submit "$T/v.json") || nok "submit diq with validation $v" "$jv"
  if wait_job "$jv" done 60; then ok "diq job with validation $v finishes"; else nok "diq job with validation $v finishes" "$(api http://x/v1/jobs/$jv)"; fi
  "$BIN/medthink" export "$jv" --set 1 --format openai -o "$T/v1.jsonl" >/dev/null 2>&1 || api "http://x/v1/jobs/$jv/export?set=1&format=openai" >"$T/v1.jsonl"
  sel=$(python3 -c '
import json,sys
print(",".join(sorted(json.loads(l)["id"] for l in open(sys.argv[1]) if l.strip())))' "$T/v1.jsonl")
  stv=$(api "http://x/v1/jobs/$jv")
  case $v in
  *dataset*)
    expect_eq "a validation dataset decides the set" "$sel" "w1,w2"
    expect_eq "the summary names the validation dataset, 2 items, 4 candidates" \
      "$(printf '%s' "$stv" | jq_py '"%s %d %d %s" % (d["selection"]["validation"], d["selection"]["validation_items"], d["selection"]["candidates"], d["selection"]["centroid_from_candidates"])')" \
      "{'dataset': 'ds_$vds'} 2 4 False"
    expect_eq "the normalized spec stores the validation dataset by id" \
      "$(printf '%s' "$stv" | jq_py 'd["spec"]["selection"]["validation"]["dataset"]')" "ds_$vds"
    expect_match "medthink status names the validation dataset" "$("$BIN/medthink" status "$jv")" \
      "validation 2 items from dataset ds_$vds"
    expect_eq "similarities to the validation centroid" "$(sqlite3 "$db" "select group_concat(round(json_extract(content,'\$.similarity'),3),',') from (select content from artifacts where job_id=${jv#job_} and kind='selection' order by item_seq)")" \
      "0.0,0.0,1.0,1.0"
    expect_eq "the validation items are embedded (stored, flagged), never rated" \
      "$(sqlite3 "$db" "select count(*) from artifacts where job_id=${jv#job_} and kind='embedding' and json_extract(content,'\$.validation')=1"),$(sqlite3 "$db" "select count(*) from tasks where job_id=${jv#job_} and step='diq_embed' and item_seq>=4 and state='done'"),$(sqlite3 "$db" "select count(*) from tasks where job_id=${jv#job_} and step='diq_rate'")" \
      "2,2,4"
    ;;
  *)
    expect_eq "the candidates' own centroid chooses otherwise" "$sel" "v1,w1"
    expect_match "medthink status names the held-out fraction" "$("$BIN/medthink" status "$jv")" \
      "validation 0 items \\(fraction 0.001 held out\\)"
    ;;
  esac
done
bad=$(api -X POST --data-binary '{"dataset":"vvset","kind":"stage1","teacher":"sim","student":"local","embedder":"e","selection":{"strategy":"diq","budget":2,"validation":{"dataset":"nosuch"}}}' -w ' %{http_code}' "http://x/v1/jobs")
expect_match "an unknown validation dataset is refused with 422 naming it" "$bad" 'nosuch.* 422$'

# kill -9 while the embeddings are being taken (the simulator answers 3 of
# the job's calls, then holds the rest): the restarted daemon sends the
# rest and the choice is the same. New texts, so no reply comes from the store.
sed 's/"question":"Case /"question":"Again /' "$T/vv.jsonl" >"$T/vv2.jsonl"
sed 's/"question":"Held /"question":"Again /' "$T/val.jsonl" >"$T/val2.jsonl"
"$BIN/medthink" import "$T/vv2.jsonl" --name vvset2 >/dev/null || nok "import vvset2"
"$BIN/medthink" import "$T/val2.jsonl" --name valset2 >/dev/null || nok "import valset2"
curl -s -o /dev/null -X POST -d '{"hold-after":3}' "http://127.0.0.1:$SIM_PORT_S/sim/config"
printf '%s' '{"dataset":"vvset2","kind":"stage1","teacher":"sim","student":"local","embedder":"e","eval_fraction":0,"seed":3,"selection":{"strategy":"diq","budget":2,"validation":{"dataset":"valset2"}}}' >"$T/v2.json"
jk=$("$BIN/medthink" submit "$T/v2.json") || nok "submit diq for the kill" "$jk"
i=0
until [ "$(sim_stats "$SIM_PORT_S" | jq_py 'd.get("gate_left", 0)')" = 0 ]; do
  i=$((i + 1)); [ $i -gt 1200 ] && break   # hang guard only
  sleep 0.05
done
before=$(api "http://x/v1/jobs/$jk" | jq_py 'd["state"]')
stop_daemon -KILL
expect_eq "killed mid-job" "$before" "running"
curl -s -o /dev/null -X POST -d '{"hold-after":0}' "http://127.0.0.1:$SIM_PORT_S/sim/config"
start_daemon || { nok "restart after kill"; exit 1; }
if wait_job "$jk" done 60; then ok "the diq job with a validation dataset finishes after kill -9"; else nok "the diq job finishes after kill -9" "$(api http://x/v1/jobs/$jk)"; fi
expect_eq "same choice and validation items after the kill" \
  "$(api "http://x/v1/jobs/$jk" | jq_py '"%d %d" % (d["selection"]["validation_items"], d["selection"]["candidates"])'),$(sqlite3 "$db" "select group_concat(item_seq) from (select item_seq from artifacts where job_id=${jk#job_} and kind='selection' and json_extract(content,'\$.selected')=1 order by item_seq)")" \
  "2 4,2,3"
exit $_failed
