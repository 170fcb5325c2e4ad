#!/bin/sh
# The web dashboard ([web] listen, docs/dashboard.md): the token file, 401
# without the token on every kind of request (page, asset, API, SSE), GET
# only, the item search route; then the dashboard itself driven in Debian's
# headless chromium through chromedriver (tests/web/): the jobs list, a
# running job's progress moving, the eval table and chart, the item browser
# and one item's story with hostile text shown as text. Screenshots are kept
# in build/test-artifacts/web/ (WEB_IMG=DIR also writes the docs' ones there).
. "$(dirname "$0")/lib.inc"

start_sim T --latency-ms 2 --drop-rate 0 || exit 1
start_sim S --latency-ms 2 || exit 1
CONF_EXTRA="
[web]
listen = 127.0.0.1:0" write_conf
start_daemon || { nok "daemon starts with [web]"; exit 1; }

url=$(sed -n 's/.*dashboard at \(http:[^ ]*\).*/\1/p' "$T/medthinkd.log" | head -n 1)
base=${url%%/?token=*}
tok=$(cat "$T/var/web.token" 2>/dev/null)
expect_match "the log line names the URL with the token" "$url" "^http://127\\.0\\.0\\.1:[0-9]+/\\?token=[0-9a-f]{64}$"
expect_eq "the token file holds the token of the log line" "$tok" "${url##*token=}"
expect_eq "the token file is 0600" "$(stat -c %a "$T/var/web.token")" 600

code() { curl -s -o "$T/web.out" -w '%{http_code}' "$@"; }
expect_eq "no token: the page is 401" "$(code "$base/")" 401
expect_match "no token: the page says how to get in, nothing else" "$(cat "$T/web.out")" "token required"
expect_eq "no token: an asset is 401" "$(code "$base/app.js")" 401
expect_eq "no token: an unknown path is 401, not 404" "$(code "$base/no-such-file")" 401
expect_eq "no token: the jobs are 401" "$(code "$base/v1/jobs")" 401
expect_match "no token: the 401 body says unauthorized only" "$(cat "$T/web.out")" '^\{"error":\{"code":"unauthorized"'
expect_eq "no token: a job's events (SSE) are 401" "$(code --max-time 5 "$base/v1/jobs/1/events")" 401
bad=$(printf '%s' "$tok" | tr '0-9a-f' '1-9a-f0')
expect_eq "a wrong token is 401" "$(code "$base/v1/jobs?token=$bad")" 401
expect_eq "a token one character short is 401" "$(code "$base/v1/jobs?token=${tok%?}")" 401
expect_eq "a Bearer with the wrong scheme is 401" "$(code -H "Authorization: Basic $tok" "$base/v1/jobs")" 401
expect_eq "no token: a POST is 401 before anything else" "$(code -X POST "$base/v1/jobs")" 401
expect_eq "?token= opens the page" "$(code "$base/?token=$tok")" 200
expect_match "the page carries the token to its script and style" "$(cat "$T/web.out")" "app.js\\?token=$tok"
expect_eq "Authorization: Bearer opens the API" "$(code -H "Authorization: Bearer $tok" "$base/v1/jobs")" 200
expect_eq "the script is served with the token" "$(code "$base/app.js?token=$tok")" 200
ct=$(curl -s -o /dev/null -w '%{content_type}' "$base/app.js?token=$tok")
expect_eq "the script is text/javascript" "$ct" "text/javascript; charset=utf-8"
csp=$(curl -s -D - -o /dev/null "$base/?token=$tok" | tr -d '\r' | sed -n 's/^Content-Security-Policy: //ip')
expect_match "the page forbids anything from elsewhere (CSP)" "$csp" "default-src 'none'; script-src 'self'"
expect_eq "POST with the token is 405 (read-only)" "$(code -X POST -H "Authorization: Bearer $tok" "$base/v1/jobs")" 405
expect_eq "the export is not on the dashboard" "$(code "$base/v1/jobs/1/export?token=$tok")" 404
expect_eq "an unknown page is 404 with the token" "$(code "$base/nothing.html?token=$tok")" 404

# A dataset with one hostile item: markup in the question, which the
# simulator's replies quote back.
cp "$top/examples/gastro-sample.jsonl" "$T/ds.jsonl"
cat >>"$T/ds.jsonl" <<'J'
{"id":"xss-1","question":"<img src=x onerror=window.__xss=1> <script>window.__xss=2</script> A 30-year-old man has burning epigastric pain relieved by meals. Which organism is most likely involved?","options":{"A":"Helicobacter pylori","B":"Escherichia coli","C":"Clostridioides difficile","D":"Giardia lamblia"},"answer":"A","topic":"stomach"}
J
"$BIN/medthink" import "$T/ds.jsonl" --name gastro >/dev/null
# The teacher answers a few replies, then holds: the job stays running
# until the browser test lets more through (sized by work, not by time).
curl -s -X POST -d '{"hold-after":6}' "http://127.0.0.1:$SIM_PORT_T/sim/config" >/dev/null
cat >"$T/p.json" <<J
{"name":"web","dataset":"gastro","kind":"pipeline","teacher":"sim","student":"local","eval_fraction":0.25,"seed":3,"train":"none","budget_usd":5}
J
job=$("$BIN/medthink" submit "$T/p.json")
expect_match "a pipeline job is submitted" "$job" "^job_[0-9]+$"

# The item search route (socket and dashboard alike).
n=$(api "http://x/v1/jobs/$job/items?q=onerror" | jq_py 'len(d["items"])')
expect_eq "item search by text finds the hostile item" "$n" 1
n=$(api "http://x/v1/jobs/$job/items?q=gi-0012&limit=5" | jq_py 'd["items"][0]["id"]')
expect_eq "item search by id puts the exact id first" "$n" gi-0012
n=$(api "http://x/v1/jobs/$job/items?limit=5" | jq_py 'str(len(d["items"])) + " " + str(d["next"])')
expect_eq "item search without q lists items in order, with where to go on" "$n" "5 5"
expect_eq "item search refuses a limit over the cap" "$(api_code GET "/v1/jobs/$job/items?limit=100000")" 422
n=$(curl -s "$base/v1/jobs/$job/reasons?token=$tok" | jq_py 'type(d["reasons"]).__name__')
expect_eq "the reasons route answers on the dashboard" "$n" list

if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  nok "chromium and chromium-driver are installed (make deps)"
  exit 1
fi
ART="${ARTIFACTS:-$top/build/test-artifacts}/web"
rm -rf "$ART"
mkdir -p "$ART"
BASE="$base" TOKEN="$tok" JOB="$job" HOSTILE=xss-1 SIM="http://127.0.0.1:$SIM_PORT_T" \
  SOCK="$MEDTHINK_SOCKET" OUT="$ART" IMG="${WEB_IMG:-}" \
  python3 "$top/tests/web/dashboard_test.py" >"$T/browser.out" 2>&1
rc=$?
cat "$T/browser.out"
[ $rc -eq 0 ] || { grep -q '^not ok' "$T/browser.out" || nok "the browser test ran" "$(tail -n 5 "$T/browser.out")"; _failed=1; }
[ -f "$ART/job-done.png" ] && ok "a screenshot is kept: $ART/job-done.png" || nok "a screenshot is kept"
curl -s -X POST -d '{"hold-after":0}' "http://127.0.0.1:$SIM_PORT_T/sim/config" >/dev/null

# A second daemon (its own socket and state_dir) asked to serve the
# dashboard on the port the first one holds: it stops at start, exit 1.
port=${base##*:}
sed -e "s|^socket = .*|socket = $T/second.sock|" -e "s|^state_dir = .*|state_dir = $T/var2|" \
  -e "s|^listen = .*|listen = 127.0.0.1:$port|" "$T/medthinkd.conf" >"$T/second.conf"
MEDTHINK_SOCKET="$T/second.sock" "$BIN/medthinkd" -c "$T/second.conf" 2>"$T/second.log"
expect_eq "a dashboard port in use stops the daemon at start (exit 1)" "$?" 1
expect_match "and the log says why" "$(cat "$T/second.log")" "web: cannot listen on 127\.0\.0\.1:$port"
stop_daemon
expect_eq "the daemon stops cleanly with dashboard clients" "$DAEMON_RC" 0
exit $_failed
