#!/bin/sh
# Evaluation at every checkpoint (docs/evaluation.md): a pipeline job against
# the simulator evaluates its student before stage one, after the first
# retrain and after the second; the "retrains" here raise the simulated
# student's accuracy between the manual train gates. The table side by side
# with intervals in the status (API and CLI), eval-report md/json/csv, the
# SVG plots (parsed as XML), and the timeline route.
. "$(dirname "$0")/lib.inc"

# One simulator plays teacher and student: its student is right with
# --student-accuracy only on questions whose gold it learned from a teacher
# prompt (tests/sim/README.md), so a stage-one job over every item teaches
# it the golds first.
start_sim T --latency-ms 1 --student-accuracy 0.3 || exit 1
SIM_PORT_S=$SIM_PORT_T
# a second student for the eval job over several students
CONF_EXTRA="
[student.other]
base_url = http://127.0.0.1:$SIM_PORT_T/v1
model = sim-student-2
max_concurrency = 8"
write_conf
start_daemon || { nok "daemon starts"; exit 1; }
M="$BIN/medthink"
"$M" import "$top/examples/gastro-sample.jsonl" --name gastro >/dev/null || nok "import"
student() { curl -s -o /dev/null -X POST -d "{\"student_accuracy\":$1}" "http://127.0.0.1:$SIM_PORT_T/sim/config"; }
cat >"$T/teach.json" <<J
{"name":"teach","dataset":"gastro","kind":"stage1","teacher":"sim","eval_fraction":0,
 "selection":{"strategy":"none"}}
J
wait_job "$("$M" submit "$T/teach.json")" done 120 || nok "the simulator learns the golds"

cat >"$T/p.json" <<J
{"name":"ck","dataset":"gastro","kind":"pipeline","teacher":"sim","student":"local",
 "eval_fraction":0.5,"seed":3,"train":"manual"}
J
job=$("$M" submit "$T/p.json")
wait_job "$job" paused 120 || nok "paused at train1" "$(api "http://x/v1/jobs/$job")"
expect_eq "baseline evaluated before stage one" \
  "$(api "http://x/v1/jobs/$job" | jq_py '[c["name"] for c in d["eval"]["checkpoints"]]')" "['baseline']"
student 0.6
"$M" resume "$job" >/dev/null
wait_job "$job" paused 120 || nok "paused at train2" "$(api "http://x/v1/jobs/$job")"
student 0.95
"$M" resume "$job" >/dev/null
if wait_job "$job" done 120; then ok "pipeline with checkpoints done"; else nok "pipeline with checkpoints done" "$(api "http://x/v1/jobs/$job")"; fi

api "http://x/v1/jobs/$job" >"$T/status.json"
python3 - "$T/status.json" >"$T/check1" 2>&1 <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
ev = st["eval"]
cks = ev["checkpoints"]
assert [c["name"] for c in cks] == ["baseline", "stage1", "stage2"], cks
n = cks[0]["total"]
assert n > 0 and all(c["total"] == n for c in cks), "same items at every checkpoint"
for c in cks:
    assert 0 <= c["correct"] <= c["total"], c
    assert abs(c["accuracy"] - c["correct"] / c["total"]) < 1e-9, c
    lo, hi = c["ci95"]
    assert 0 <= lo <= c["accuracy"] <= hi <= 1, c
    assert c["by_topic"] and sum(t["total"] for t in c["by_topic"].values()) == c["total"], c
    for t in c["by_topic"].values():
        assert len(t["ci95"]) == 2, t
    assert "ungraded" in c and "judged" in c, c
for c in cks[1:]:
    ch = c["change"]
    assert ch["from"] == "baseline" and ch["pairs"] == n, ch
    assert abs(ch["delta"] - (c["accuracy"] - cks[0]["accuracy"])) < 1e-9, ch
    assert ch["ci95"][0] <= ch["delta"] <= ch["ci95"][1], ch
    assert ch["gained"] - ch["lost"] == c["correct"] - cks[0]["correct"], ch
    assert c["same_model_as_baseline"] is False, c
# the retrained (more accurate) student did better, and the cache did not
# hand back the baseline's answers
assert cks[2]["accuracy"] > cks[0]["accuracy"], [c["accuracy"] for c in cks]
assert cks[2]["change"]["ci95"][0] > 0, cks[2]["change"]
# the latest checkpoint's numbers stay at the top, as before checkpoints
assert ev["total"] == cks[2]["total"] and ev["accuracy"] == cks[2]["accuracy"], ev
print("ok")
PY
if [ "$(tail -n 1 "$T/check1")" = ok ]; then ok "API: baseline, stage1, stage2 with intervals and changes"; else nok "API: baseline, stage1, stage2 with intervals and changes" "$(cat "$T/check1")"; fi

out=$("$M" status "$job")
expect_match "CLI status: checkpoint table" "$out" 'checkpoints \(accuracy, 95% interval'
expect_match "CLI status: baseline row" "$out" 'baseline +[0-9.]+% \[ *[0-9.]+, +[0-9.]+\]'
expect_match "CLI status: stage2 row with its change" "$out" 'stage2 +[0-9.]+% \[.*\] .* \+[0-9.]+ \[[-+][0-9.]+, \+[0-9.]+\]'

# --- eval-report
"$M" eval-report "$job" --format md >"$T/r.md" || nok "eval-report md"
expect_match "eval-report md: table rows" "$(cat "$T/r.md")" '\| stage1 \| [0-9.]+% \| [0-9.]+ to [0-9.]+% \|'
expect_match "eval-report md: by topic" "$(cat "$T/r.md")" '## By topic'
"$M" eval-report "$job" --format json -o "$T/r.json" || nok "eval-report json"
"$M" eval-report "$job" --format csv -o "$T/r.csv" || nok "eval-report csv"
python3 - "$T/status.json" "$T/r.json" "$T/r.csv" >"$T/check2" 2>&1 <<'PY'
import csv, json, sys
st = json.load(open(sys.argv[1])); cks = st["eval"]["checkpoints"]
r = json.load(open(sys.argv[2]))
assert r["checkpoints"] == cks, "json report = the status's checkpoints"
rows = list(csv.DictReader(open(sys.argv[3], newline="")))
assert len(rows) == sum(1 + len(c["by_topic"]) for c in cks), len(rows)
for c in cks:
    o = [x for x in rows if x["checkpoint"] == c["name"] and x["topic"] == ""]
    assert len(o) == 1 and int(o[0]["correct"]) == c["correct"], o
    assert abs(float(o[0]["accuracy"]) - c["accuracy"]) < 1e-6, o
    assert abs(float(o[0]["ci95_lo"]) - c["ci95"][0]) < 1e-6, o
    if "change" in c:
        assert abs(float(o[0]["delta_ci95_hi"]) - c["change"]["ci95"][1]) < 1e-6, o
    else:
        assert o[0]["delta"] == "", o
print("ok")
PY
if [ "$(tail -n 1 "$T/check2")" = ok ]; then ok "eval-report json and csv match the API"; else nok "eval-report json and csv match the API" "$(cat "$T/check2")"; fi
"$M" eval-report "$job" --format xml >/dev/null 2>&1
expect_eq "eval-report: an unknown format is a usage error" $? 2

# --- plots, parsed as XML
for w in eval funnel progress; do
  "$M" plot "$job" --what $w -o "$T/$w.svg" || nok "plot $w"
done
python3 - "$T" >"$T/check3" 2>&1 <<'PY'
import sys, xml.etree.ElementTree as ET
T = sys.argv[1]
ns = "{http://www.w3.org/2000/svg}"
def texts(w):
    root = ET.parse(f"{T}/{w}.svg").getroot()
    assert root.tag == ns + "svg", root.tag
    return root, " ".join("".join(t.itertext()) for t in root.iter(ns + "text"))
root, t = texts("eval")
for name in ("baseline", "stage1", "stage2", "overall", "accuracy (%)", "95% interval"):
    assert name in t, (name, t)
assert len(list(root.iter(ns + "rect"))) > 3 and len(list(root.iter(ns + "path"))) >= 3, "bars and whiskers"
root, t = texts("funnel")
for name in ("screened", "kept", "explained", "answered", "wrong", "corrected"):
    assert name in t, (name, t)
root, t = texts("progress")
assert "time since the job started" in t and "per bucket of" in t, t
assert len(list(root.iter(ns + "polyline"))) == 2, "two series"
print("ok")
PY
if [ "$(tail -n 1 "$T/check3")" = ok ]; then ok "plots are valid SVG with their labels"; else nok "plots are valid SVG with their labels" "$(cat "$T/check3")"; fi
"$M" plot "$job" --what pie -o "$T/x.svg" >/dev/null 2>&1
expect_eq "plot: an unknown --what is a usage error" $? 2

# --- the timeline route
api "http://x/v1/jobs/$job/timeline" >"$T/tl.json"
api "http://x/v1/jobs/$job/timeline?bucket=1" >"$T/tl1.json"
python3 - "$T/status.json" "$T/tl.json" "$T/tl1.json" >"$T/check4" 2>&1 <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
for f in sys.argv[2:]:
    tl = json.load(open(f))
    S, pts = tl["bucket_s"], tl["points"]
    assert S >= 1 and 1 <= len(pts) <= 500, (S, len(pts))
    ts = [p["t"] for p in pts]
    assert all(t % S == 0 for t in ts) and ts == sorted(ts) and len(set(ts)) == len(ts), ts[:5]
    assert all(b - a == S for a, b in zip(ts, ts[1:])), "one point per bucket"
    for p in pts:
        assert set(p) >= {"t", "calls", "tokens_in", "tokens_out", "cost_usd", "items_done"}, p
    # calls answered from the cache are not calls the job made
    assert sum(p["calls"] for p in pts) == st["calls"]["total"] - st["calls"].get("cached", 0), (sum(p["calls"] for p in pts), st["calls"])
    assert sum(p["tokens_in"] for p in pts) == st["tokens"]["in"]
    assert abs(sum(p["cost_usd"] for p in pts) - st["cost_usd"]) < 1e-6
    assert sum(p["items_done"] for p in pts) == sum(v["done"] for v in st["counts"].values())
assert json.load(open(sys.argv[3]))["bucket_s"] == 1
print("ok")
PY
if [ "$(tail -n 1 "$T/check4")" = ok ]; then ok "timeline: buckets sum to the job's calls, tokens, cost, steps"; else nok "timeline: buckets sum to the job's calls, tokens, cost, steps" "$(cat "$T/check4")"; fi
expect_eq "timeline: a bad bucket is 422" "$(api_code GET "/v1/jobs/$job/timeline?bucket=0")" 422
expect_eq "timeline: a bucket that is not a number is 422" "$(api_code GET "/v1/jobs/$job/timeline?bucket=1x")" 422
expect_eq "timeline: unknown job is 404" "$(api_code GET "/v1/jobs/job_999/timeline")" 404

# --- train none: the same model at every checkpoint, said plainly
cat >"$T/n.json" <<J
{"name":"same","dataset":"gastro","kind":"pipeline","teacher":"sim","student":"local",
 "eval_fraction":0.5,"seed":3,"train":"none","selection":{"strategy":"none"}}
J
job2=$("$M" submit "$T/n.json")
if wait_job "$job2" done 120; then ok "train none pipeline done"; else nok "train none pipeline done"; fi
expect_match "train none: the note says the same model" "$("$M" status "$job2")" 'note: train is none: .*same model'
expect_match "train none: the report says it too" "$("$M" eval-report "$job2")" 'Note: train is none'

# --- an eval job keeps its single report
cat >"$T/e.json" <<J
{"name":"ev","dataset":"gastro","kind":"eval","teacher":"sim","student":"local","eval_fraction":0.5,"seed":3}
J
job3=$("$M" submit "$T/e.json")
wait_job "$job3" done 60 || nok "eval job done"
expect_eq "eval job: one checkpoint" "$(api "http://x/v1/jobs/$job3" | jq_py '[c["name"] for c in d["eval"]["checkpoints"]]')" "['eval']"

# --- an eval job over several students: one round each, the same split
cat >"$T/m.json" <<J
{"name":"two","dataset":"gastro","kind":"eval","teacher":"sim","students":["local","other"],
 "eval_fraction":0.5,"seed":3}
J
job4=$("$M" submit "$T/m.json")
if wait_job "$job4" done 120; then ok "eval job over two students done"; else nok "eval job over two students done" "$(api "http://x/v1/jobs/$job4")"; fi
api "http://x/v1/jobs/$job4" >"$T/m.status"
python3 - "$T/m.status" "$T/status.json" >"$T/check5" 2>&1 <<'PY'
import json, sys
st = json.load(open(sys.argv[1])); pipe = json.load(open(sys.argv[2]))
cks = st["eval"]["checkpoints"]
assert [c["name"] for c in cks] == ["student.local", "student.other"], cks
assert [c["student"] for c in cks] == ["student.local", "student.other"], cks
n = pipe["eval"]["checkpoints"][0]["total"]
assert all(c["total"] == n for c in cks), ("the same split as the pipeline", n, cks)
ch = cks[1]["change"]
assert ch["from"] == "student.local" and ch["pairs"] == n, ch
assert ch["ci95"][0] <= ch["delta"] <= ch["ci95"][1], ch
assert "change" not in cks[0]
assert st["spec"]["students"] == ["student.local", "student.other"] if "spec" in st else True
print("ok")
PY
if [ "$(tail -n 1 "$T/check5")" = ok ]; then ok "eval job: one row per student, changes from the first"; else nok "eval job: one row per student, changes from the first" "$(cat "$T/check5")"; fi
expect_match "eval job: the report names both students" "$("$M" eval-report "$job4" --format csv)" 'student.other,,[0-9]+,'
expect_eq "students in a pipeline is refused" \
  "$(api_code POST /v1/jobs -d '{"dataset":"gastro","kind":"pipeline","teacher":"sim","students":["local"]}')" 422
expect_eq "an unknown student is refused" \
  "$(api_code POST /v1/jobs -d '{"dataset":"gastro","kind":"eval","students":["local","nope"]}')" 422

stop_daemon
[ "$_failed" = 0 ]
