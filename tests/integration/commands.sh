#!/bin/sh
# The operations commands of SPEC 9: `medthink submit --dry-run` (the
# estimate; creates nothing; its numbers checked by hand on a small dataset).
. "$(dirname "$0")/lib.inc"

start_sim T --seed 3 || exit 1
SIM_PORT_S=$SIM_PORT_T
write_conf
start_daemon || exit 1
M="$BIN/medthink"
"$M" import "$top/examples/gastro-sample.jsonl" --name gastro >/dev/null

cat >"$T/s1.json" <<'J'
{"name":"est","dataset":"gastro","kind":"stage1","teacher":"sim","eval_fraction":0,"max_items":10}
J
est=$("$M" submit "$T/s1.json" --dry-run 2>&1)
expect_eq "dry-run exits 0" $? 0
expect_match "dry-run prints the estimate" "$est" 'nothing was created'
expect_match "dry-run prints a screen row" "$est" 'screen +teacher.sim +10 '
expect_eq "dry-run creates no job" "$(api http://x/v1/jobs | jq_py 'len(d["jobs"])')" 0

"$M" --json submit "$T/s1.json" --dry-run >"$T/est.json"
# By hand: 10 train items (eval_fraction 0, max_items 10); screen for every
# one, explain for all (no selection budget: kept share 1.0); completion at
# max_tokens (screen 400, explain 1500); cost at 2.5 / 10 USD per Mtok.
got=$(python3 - "$T/est.json" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
s = {r["step"]: r for r in e["steps"]}
ok = (e["items"]["train_used"] == 10 and e["items"]["dataset"] == 48 and
      sorted(s) == ["explain", "screen"] and s["screen"]["calls"] == 10 and
      s["explain"]["calls"] == 10 and s["screen"]["completion_tokens_max"] == 4000 and
      s["explain"]["completion_tokens_max"] == 15000 and
      s["screen"]["prompt_tokens"] > 10 * 50 and
      abs(s["screen"]["cost_usd_max"] - (s["screen"]["prompt_tokens"] * 2.5 + 4000 * 10) / 1e6) < 1e-4 and
      e["total"]["calls"] == 20 and
      abs(e["total"]["cost_usd_max"] - sum(r["cost_usd_max"] for r in e["steps"])) < 1e-6)
print("yes" if ok else json.dumps(e))
PY
)
expect_eq "dry-run numbers match a hand computation" "$got" yes

cat >"$T/s2.json" <<'J'
{"name":"est2","dataset":"gastro","kind":"pipeline","teacher":"sim","student":"local","eval_fraction":0.25,"seed":7,
 "selection":{"strategy":"teacher_screen","budget":0.5},"train":"none"}
J
"$M" --json submit "$T/s2.json" --dry-run >"$T/est2.json"
got=$(python3 - "$T/est2.json" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
s = {r["step"]: r for r in e["steps"]}
it = e["items"]
tr, ev = it["train"], it["eval"]
def round(x): return int(x + 0.5)
ok = (tr + ev == 48 and ev > 0 and s["screen"]["calls"] == tr and
      s["explain"]["calls"] == round(tr * 0.5) and s["answer"]["calls"] == round(tr * 0.5) and
      s["correct"]["calls"] == round(tr * 0.5 * 0.4) and s["eval"]["calls"] == ev and
      e["assumptions"]["kept_share"] == 0.5)
print("yes" if ok else json.dumps(e))
PY
)
expect_eq "dry-run: selection budget, split, shares" "$got" yes

# The split the estimate counts is the one a real job makes.
job=$("$M" submit "$T/s2.json")
wait_job "$job" done 120
evt=$("$M" --json status "$job" | jq_py 'd["eval"]["total"]')
expect_eq "dry-run eval items = the job's eval items" "$evt" "$(jq_py 'd["items"]["eval"]' <"$T/est2.json")"

code=$(api_code POST '/v1/jobs?dry_run=1' -d '{"name":"x","dataset":"nope","kind":"stage1","teacher":"sim"}')
expect_eq "dry-run validates as submit: unknown dataset is 422" "$code" 422
expect_match "dry-run error names the field" "$(cat "$T/last.json")" '"field": *"dataset"'
[ "$_failed" = 0 ]
