#!/bin/sh
# The format tables as users see them: GET /v1/formats, `medthink formats`
# (text and --json), and the daemon's check of a format name, which the CLI
# reports as a usage error (exit 2, naming the valid formats) since it keeps
# no list of its own.
. "$(dirname "$0")/lib.inc"

write_conf
start_daemon || { nok "daemon starts"; exit 1; }
ok "daemon starts"

# --- GET /v1/formats
code=$(api_code GET /v1/formats)
expect_eq "GET /v1/formats: 200" "$code" "200"
# SPEC's formats first, in table order (a format added later comes after)
imp=$(jq_py '",".join(f["name"] for f in d["import"][:6])' <"$T/last.json")
expect_eq "import formats, in table order" "$imp" "native,medqa,medmcqa,pubmedqa,sharegpt,csv"
exp=$(jq_py '",".join(f["name"] for f in d["export"][:4])' <"$T/last.json")
expect_eq "export formats, in table order" "$exp" "openai,sharegpt,alpaca,grpo"
# the error messages below name every row of the tables
imp_names=$(jq_py '", ".join(f["name"] for f in d["import"])' <"$T/last.json")
exp_names=$(jq_py '(lambda n: ", ".join(n[:-1]) + " or " + n[-1])([f["name"] for f in d["export"]])' <"$T/last.json")
nrows=$(jq_py 'len(d["import"]) + len(d["export"])' <"$T/last.json")
nodesc=$(jq_py 'sum(1 for k in ("import","export") for f in d[k] if not f.get("description"))' <"$T/last.json")
expect_eq "every format has a description" "$nodesc" "0"
code=$(api_code POST /v1/formats --data-binary '{}')
expect_eq "POST /v1/formats: 405" "$code" "405"

# --- medthink formats
out=$("$BIN/medthink" formats 2>&1); rc=$?
expect_eq "medthink formats: exit 0" "$rc" "0"
expect_match "medthink formats: the import list" "$out" "import formats"
expect_match "medthink formats: a row with its description" "$out" "pubmedqa +PubMedQA"
expect_match "medthink formats: the export list" "$out" "grpo +GRPO"
out=$("$BIN/medthink" formats --json 2>&1); rc=$?
expect_eq "medthink formats --json: exit 0" "$rc" "0"
n=$(printf '%s' "$out" | jq_py 'len(d["import"]) + len(d["export"])')
expect_eq "medthink formats --json: both lists" "$n" "$nrows"

# --- unknown formats: the daemon checks, the CLI says usage error
printf '{"question":"q","answer":"a"}\n' >"$T/x.jsonl"
"$BIN/medthink" import "$T/x.jsonl" --format bogus >"$T/out" 2>"$T/err"; rc=$?
expect_eq "import --format bogus: exit 2" "$rc" "2"
expect_match "import --format bogus: names the valid ones" "$(cat "$T/err")" \
  "unknown format \"bogus\"; expected one of: $imp_names"
expect_match "import --format bogus: usage line" "$(cat "$T/err")" "usage: medthink import FILE"
n=$(api http://x/v1/datasets | jq_py 'len(d["datasets"])')
expect_eq "import --format bogus: nothing stored" "$n" "0"
"$BIN/medthink" import "$T/x.jsonl" --name x >/dev/null || nok "import x"
echo '{"kind":"stage1","dataset":"x","teacher":"sim","max_items":1}' >"$T/j.json"
job=$("$BIN/medthink" submit "$T/j.json") || nok "submit a job"
"$BIN/medthink" pause "$job" >/dev/null 2>&1
"$BIN/medthink" export "$job" --set 1 --format xml >"$T/out" 2>"$T/err"; rc=$?
expect_eq "export --format xml: exit 2" "$rc" "2"
expect_match "export --format xml: names the valid ones" "$(cat "$T/err")" \
  "format must be $exp_names, not \"xml\""
expect_match "export --format xml: usage line" "$(cat "$T/err")" "usage: medthink export JOB"
code=$(api_code GET "/v1/jobs/$job/export?set=1&format=xml")
expect_eq "export ?format=xml over the API: 400" "$code" "400"
expect_match "export ?format=xml: bad_format on field format" "$(cat "$T/last.json")" '"code": ?"bad_format".*"field": ?"format"'

[ "$_failed" = 0 ]
