#!/bin/sh
# The foundation end to end: the real daemon in a temporary directory, driven
# with curl --unix-socket and the CLI: health, datasets (every layout, on the
# real files in ../shared/data), errors, jobs API, metrics, socket manners,
# config errors and a clean shutdown.
. "$(dirname "$0")/lib.inc"

write_conf
start_daemon || { nok "daemon starts"; exit 1; }
ok "daemon starts"

# --- socket manners
mode=$(stat -c %a "$MEDTHINK_SOCKET")
expect_eq "socket is 0600" "$mode" "600"
out=$("$BIN/medthinkd" -c "$T/medthinkd.conf" 2>&1); rc=$?
expect_eq "second daemon exits 1" "$rc" "1"
expect_match "second daemon says already running" "$out" "already running"

# --- health
h=$(api http://x/v1/health)
expect_match "GET /v1/health" "$h" '"status": ?"ok"'
expect_match "health has a version" "$h" '"version": ?"[0-9]'

# --- imports of the real public files
imp() { "$BIN/medthink" import "$@" 2>"$T/imp.err"; }
ds_medqa=$(imp "$SHARED/data/medqa/medqa_test.jsonl" --format medqa --name medqa)
expect_match "import medqa prints an id" "$ds_medqa" '^ds_[0-9]+$'
n=$(api "http://x/v1/datasets/$ds_medqa" | jq_py 'd["items"]')
expect_eq "medqa: 1273 items" "$n" "1273"
ds_pub=$(imp "$SHARED/data/pubmedqa/ori_pqal.json" --format pubmedqa --name pubmedqa)
n=$(api "http://x/v1/datasets/$ds_pub" | jq_py 'd["items"]')
expect_eq "pubmedqa: 1000 items" "$n" "1000"
ds_mt=$(imp "$SHARED/data/medthink/digestive_Qwen2_72b_Instruction_train.json" --format sharegpt --name digestive)
n=$(api "http://x/v1/datasets/$ds_mt" | jq_py 'd["items"]')
expect_eq "medthink sharegpt: 755 items" "$n" "755"
ds_csv=$(imp "$SHARED/data/medthink/q&a.csv" --format csv --name qa-csv)
n=$(api "http://x/v1/datasets/$ds_csv" | jq_py 'd["items"]')
expect_eq "medthink csv: 199 items" "$n" "199"
ds_native=$(imp "$top/examples/gastro-sample.jsonl" --name gastro)
expect_match "import native sample" "$ds_native" '^ds_[0-9]+$'
lst=$("$BIN/medthink" list)
expect_match "list shows datasets" "$lst" "medqa"
code=$(api_code GET /v1/datasets)
expect_eq "GET /v1/datasets 200" "$code" "200"
code=$(api_code GET /v1/datasets/medqa)
expect_eq "dataset by name" "$code" "200"

# --- bad datasets: atomic by default, --skip-invalid keeps the good lines
cat >"$T/bad.jsonl" <<'J'
{"id":"a1","question":"q1","options":{"A":"x","B":"y"},"answer":"A"}
{"id":"a2","question":"q2","options":{"A":"x","B":"y"},"answer":"C"}
{"id":"a3","question":"q3","answer":"free text"}
{"id":"a1","question":"q4","answer":"dup"}
not json
J
before=$(api http://x/v1/datasets | jq_py 'len(d["datasets"])')
out=$("$BIN/medthink" import "$T/bad.jsonl" --name bad 2>&1); rc=$?
expect_eq "bad dataset: exit 1" "$rc" "1"
expect_match "bad dataset: names line 2" "$out" "line 2"
after=$(api http://x/v1/datasets | jq_py 'len(d["datasets"])')
expect_eq "bad dataset: nothing stored" "$after" "$before"
code=$(api_code POST "/v1/datasets?name=bad&format=native" --data-binary @"$T/bad.jsonl")
expect_eq "bad dataset over the API: 422" "$code" "422"
rej=$(jq_py 'len(d["rejected"])' <"$T/last.json")
expect_eq "every bad line reported" "$rej" "3"
ds_skip=$("$BIN/medthink" import "$T/bad.jsonl" --name skip --skip-invalid 2>"$T/skip.err")
n=$(api "http://x/v1/datasets/$ds_skip" | jq_py 'd["items"]')
expect_eq "--skip-invalid stores the 2 good lines" "$n" "2"
expect_match "--skip-invalid reports line 5" "$(cat "$T/skip.err")" "5"
printf '{"question":"q","answer":"a\377"}\n' >"$T/utf8.jsonl"
out=$("$BIN/medthink" import "$T/utf8.jsonl" 2>&1)
expect_match "invalid UTF-8 named with its line" "$out" "line 1.*UTF-8"
# --- images: a symlink out of the dataset's folder is refused before upload
mkdir -p "$T/imgds" "$T/private"
printf 'OPENAI_API_KEY=sk-live-secret\n' >"$T/private/secret.txt"
ln -s "$T/private/secret.txt" "$T/imgds/leak.png"
printf '\211PNG\r\n\032\n0000' >"$T/imgds/ok.png"
cat >"$T/imgds/d.jsonl" <<'J'
{"id":"i1","question":"q1","answer":"a","images":["ok.png"]}
{"id":"i2","question":"q2","answer":"a","images":["leak.png"]}
J
before=$(api http://x/v1/datasets | jq_py 'len(d["datasets"])')
out=$("$BIN/medthink" import "$T/imgds/d.jsonl" --name leak 2>&1); rc=$?
expect_eq "image out of the folder: exit 1" "$rc" "1"
expect_match "image out of the folder: names file, line, item and path" "$out" \
  "d\.jsonl: line 2: item \"i2\": image \"leak\.png\": resolves to .*secret\.txt, outside the dataset's folder"
after=$(api http://x/v1/datasets | jq_py 'len(d["datasets"])')
expect_eq "image out of the folder: nothing stored" "$after" "$before"
n=$(sqlite3 "$T/var/medthink.db" "select count(*) from items where body like '%sk-live-secret%' or body like '%$(printf 'OPENAI_API_KEY=sk-live-secret\n' | base64 | cut -c1-16)%'")
expect_eq "image out of the folder: the secret is in no item" "$n" "0"
ds_img=$("$BIN/medthink" import "$T/imgds/d.jsonl" --name leak-skip --skip-invalid 2>"$T/imgskip.err")
n=$(api "http://x/v1/datasets/$ds_img" | jq_py 'd["items"]')
expect_eq "image out of the folder, --skip-invalid: the good item stored" "$n" "1"
expect_match "image out of the folder, --skip-invalid: reported as a rejected line" "$(cat "$T/imgskip.err")" \
  "d\.jsonl: line 2: item \"i2\": image \"leak\.png\": resolves to"
expect_match "image out of the folder, --skip-invalid: counted" "$(cat "$T/imgskip.err")" "1 items stored, 1 lines rejected"
code=$(api_code POST "/v1/datasets?format=nope" --data-binary @"$T/bad.jsonl")
expect_eq "unknown format: 400" "$code" "400"

# --- jobs API
code=$(api_code POST /v1/jobs --data-binary '{not json')
expect_eq "malformed spec: 400" "$code" "400"
expect_match "error object" "$(cat "$T/last.json")" '"error": ?\{"code"'
code=$(api_code POST /v1/jobs --data-binary '{"kind":"stage1","dataset":"nope","teacher":"sim"}')
expect_eq "unknown dataset: 422" "$code" "422"
expect_match "422 names the field" "$(cat "$T/last.json")" '"field": ?"dataset"'
code=$(api_code POST /v1/jobs --data-binary '{"kind":"stage9","dataset":"gastro","teacher":"sim"}')
expect_eq "bad kind: 422" "$code" "422"
code=$(api_code POST /v1/jobs --data-binary '{"kind":"stage1","dataset":"gastro","teacher":"nope"}')
expect_eq "unknown teacher: 422" "$code" "422"
code=$(api_code POST /v1/jobs --data-binary '{"kind":"stage1","dataset":"gastro","teacher":"sim","colour":1}')
expect_eq "unknown key: 422" "$code" "422"
code=$(api_code GET /v1/jobs/job_999)
expect_eq "unknown job: 404" "$code" "404"
code=$(api_code POST /v1/jobs/job_999/pause)
expect_eq "pause unknown job: 404" "$code" "404"
code=$(api_code GET /v1/nothing)
expect_eq "unknown route: 404" "$code" "404"
code=$(api_code DELETE /v1/health)
expect_eq "wrong method: 405" "$code" "405"
# A job against a teacher that is down stays running (its calls are retried);
# pause / resume / cancel and their conflicts.
job=$(echo '{"kind":"stage1","dataset":"gastro","teacher":"sim","max_items":3}' >"$T/j.json"; "$BIN/medthink" submit "$T/j.json")
expect_match "submit prints a job id" "$job" '^job_[0-9]+$'
st=$(api "http://x/v1/jobs/$job")
expect_match "status has counts" "$st" '"counts"'
expect_match "status has cost_usd" "$st" '"cost_usd"'
check "pause" "$BIN/medthink" pause "$job"
code=$(api_code POST "/v1/jobs/$job/pause")
expect_eq "pause twice: 409" "$code" "409"
check "resume" "$BIN/medthink" resume "$job"
check "cancel" "$BIN/medthink" cancel "$job"
code=$(api_code POST "/v1/jobs/$job/resume")
expect_eq "resume cancelled: 409" "$code" "409"
jl=$(api http://x/v1/jobs | jq_py 'len(d["jobs"])')
expect_eq "GET /v1/jobs lists it" "$jl" "1"

head -c 2000000 /dev/zero | tr '\0' ' ' >"$T/big.json"
code=$(api_code POST /v1/jobs --data-binary @"$T/big.json")
expect_eq "job spec over 1 MiB: 413" "$code" "413"

# --- metrics
m=$(api http://x/metrics)
expect_match "metrics: Prometheus text" "$m" '^# HELP medthink_up'
expect_match "metrics: api requests counted" "$m" 'medthink_api_requests_total [1-9]'

# --- HTTP errors
code=$(printf 'GARBAGE\r\n\r\n' | curl -s -o /dev/null -w '%{http_code}' --unix-socket "$MEDTHINK_SOCKET" -X 'BAD METHOD' http://x/v1/health)
[ "$code" != "000" ] && ok "malformed request answered" || nok "malformed request answered"
kill -0 "$DAEMON_PID" && ok "daemon alive after bad requests" || nok "daemon alive after bad requests"

# --- clean shutdown, stale socket, restart keeps data
stop_daemon -TERM
expect_eq "SIGTERM: exit 0" "$DAEMON_RC" "0"
[ ! -S "$MEDTHINK_SOCKET" ] && ok "socket removed on exit" || nok "socket removed on exit"
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$MEDTHINK_SOCKET"
start_daemon && ok "stale socket replaced" || nok "stale socket replaced"
n=$(api "http://x/v1/datasets/$ds_medqa" | jq_py 'd["items"]')
expect_eq "data survives a restart" "$n" "1273"
stop_daemon -TERM

# --- config errors name file, line and key
printf '[daemon]\nsocket = %s/x.sock\nbogus = 1\n[teacher.t]\nbase_url = http://127.0.0.1:1/v1\nmodel = m\n' "$T" >"$T/badkey.conf"
out=$("$BIN/medthinkd" -c "$T/badkey.conf" 2>&1); rc=$?
expect_eq "bad config: exit 1" "$rc" "1"
expect_match "bad config: file:line and key" "$out" "badkey.conf:3:.*bogus"
out=$("$BIN/medthinkd" -c "$T/missing.conf" 2>&1); rc=$?
expect_eq "missing config: exit 1" "$rc" "1"
[ "$_failed" = 0 ]
