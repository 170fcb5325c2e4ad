#!/bin/sh
# The simulator (bin/medthink-sim): starts it on an ephemeral port, checks every
# endpoint with curl, the rate limit (429 + Retry-After), the faults, the
# stats, and stops it. Prints "ok - NAME" / "not ok - NAME" per check.
BIN=${BIN:-bin}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 2
SIM="$BIN/medthink-sim"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sim-it.XXXXXX")
pid=""

cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { echo "ok - $1"; }
notok() { echo "not ok - $1"; }
check() {
  name=$1
  shift
  if "$@"; then ok "$name"; else notok "$name"; fi
}

# json FILE PYTHON-EXPR: evaluates EXPR with j = the parsed file; true when truthy.
json() {
  python3 -c 'import json,sys
j=json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" 2>/dev/null
}

if [ ! -x "$SIM" ]; then
  notok "simulator binary $SIM exists (run make)"
  exit 1
fi

check "help says it is a simulator" sh -c "'$SIM' --help | grep -q SIMULATOR"

"$SIM" --listen 127.0.0.1:0 --seed 7 --contradict-rate 0 >"$tmp/out" 2>"$tmp/err" &
pid=$!
i=0
while [ $i -lt 50 ] && ! grep -q '^listening on ' "$tmp/out"; do
  sleep 0.1
  i=$((i + 1))
done
PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/out")
if [ -z "$PORT" ]; then
  notok "simulator starts and prints its port"
  cat "$tmp/err"
  exit 1
fi
ok "simulator starts and prints its port ($PORT)"
check "startup log says SIMULATOR" grep -q SIMULATOR "$tmp/err"
URL="http://127.0.0.1:$PORT"

# post PATH BODYFILE OUT [curl args...]: writes the body to OUT, prints the status.
post() {
  p=$1 b=$2 o=$3
  shift 3
  curl -s -o "$o" -D "$o.h" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary @"$b" "$@" "$URL$p"
}

Q='Question:\nA 45-year-old man has epigastric pain and a positive urea breath test for H. pylori. What is the first-line therapy?\nOptions:\nA. Omeprazole alone\nB. Clarithromycin-based triple therapy\nC. Partial gastrectomy\nD. Antacids as needed'
mk() { # mk FILE TASK EXTRA [response_format]
  printf '{"model":"sim-teacher","messages":[{"role":"system","content":"You are a medical expert."},{"role":"user","content":"### Task: %s\\n%s%s"}]%s}' \
    "$2" "$Q" "$3" "$4" >"$1"
}
mk "$tmp/explain.json" explain '\nGold answer: B'
mk "$tmp/screen.json" screen '\nGold answer: B' ',"response_format":{"type":"json_object"}'
mk "$tmp/answer.json" answer ''
mk "$tmp/judge.json" judge '\nGold answer: B\nStudent answer:\nI think it is C.\\nThe answer is (C).'
mk "$tmp/correct.json" correct '\nGold answer: B\nStudent answer:\nThe answer is (C).'

code=$(curl -s -o "$tmp/models" -w '%{http_code}' "$URL/v1/models")
check "GET /v1/models" json "$tmp/models" "len(j['data']) >= 1 and '$code' == '200'"

code=$(post /v1/chat/completions "$tmp/explain.json" "$tmp/r")
check "explain: 200 with usage, id, echoed model" json "$tmp/r" \
  "'$code'=='200' and j['model']=='sim-teacher' and j['id'] and j['usage']['total_tokens']==j['usage']['prompt_tokens']+j['usage']['completion_tokens'] and j['choices'][0]['finish_reason']=='stop'"
check "explain: ends with Final answer: B" json "$tmp/r" \
  "j['choices'][0]['message']['content'].rstrip().endswith('Final answer: B')"
check "explain: names every distractor" json "$tmp/r" \
  "all(('Option '+k) in j['choices'][0]['message']['content'] for k in 'ACD')"

post /v1/chat/completions "$tmp/screen.json" "$tmp/r" >/dev/null
check "screen with response_format: bare JSON verdict" json "$tmp/r" \
  "set(json.loads(j['choices'][0]['message']['content'])) >= {'keep','reason','quality','difficulty','topic'}"

post /v1/chat/completions "$tmp/judge.json" "$tmp/r" >/dev/null
check "judge: finds C, not correct" sh -c "python3 -c '
import json,sys,re
c=json.load(open(sys.argv[1]))[\"choices\"][0][\"message\"][\"content\"]
m=re.search(r\"\\{.*\\}\", c, re.S)
v=json.loads(m.group(0))
sys.exit(0 if v[\"answer\"]==\"C\" and v[\"correct\"] is False else 1)' '$tmp/r'"

post /v1/chat/completions "$tmp/correct.json" "$tmp/r" >/dev/null
check "correct: final_answer is the gold" sh -c "python3 -c '
import json,sys,re
c=json.load(open(sys.argv[1]))[\"choices\"][0][\"message\"][\"content\"]
v=json.loads(re.search(r\"\\{.*\\}\", c, re.S).group(0))
sys.exit(0 if v[\"final_answer\"]==\"B\" and v[\"reasoning\"] and v[\"critique\"] else 1)' '$tmp/r'"

post /v1/chat/completions "$tmp/answer.json" "$tmp/a1" >/dev/null
post /v1/chat/completions "$tmp/answer.json" "$tmp/a2" >/dev/null
check "answer: deterministic for the same prompt" sh -c "
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"choices\"][0][\"message\"][\"content\"])' '$tmp/a1' >'$tmp/c1' &&
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"choices\"][0][\"message\"][\"content\"])' '$tmp/a2' >'$tmp/c2' &&
cmp -s '$tmp/c1' '$tmp/c2' && test -s '$tmp/c1'"

printf '{"model":"sim-student","prompt":"The liver makes bile.","echo":true,"logprobs":1,"max_tokens":0}' >"$tmp/cmpl.json"
code=$(post /v1/completions "$tmp/cmpl.json" "$tmp/r")
check "completions echo+logprobs: prompt token scores" json "$tmp/r" \
  "'$code'=='200' and j['choices'][0]['text']=='The liver makes bile.' and j['choices'][0]['logprobs']['token_logprobs'][0] is None and len(j['choices'][0]['logprobs']['tokens'])>=5 and all(x<0 for x in j['choices'][0]['logprobs']['token_logprobs'][1:])"

# Long Chinese questions (the MedThink data): every task answers 200 with
# valid text at every length, whatever byte a quote or a cut lands on; an
# open answer longer than the remembered 47 bytes is cut on a character.
check "long Chinese questions: every task answers 200" python3 - "$URL" <<'PY'
import json, sys, urllib.request, urllib.error
url = sys.argv[1]
def post(path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
base = "患者男性，45岁，因反复上腹部疼痛3年，加重伴黑便2天入院"
opts = "Options:\nA. 胃溃疡出血\nB. 十二指肠溃疡出血\nC. 胃癌\nD. 食管静脉曲张破裂出血"
bad = []
for n in range(1, 40):
    q = (base * 8)[: 20 + n * 7] + "。最可能的诊断是什么？"
    for task, extra in (("explain", "\nGold answer: B"), ("answer", ""),
                        ("screen", "\nGold answer: B"),
                        ("judge", "\nGold answer: B\nStudent answer:\n答案是B"),
                        ("correct", "\nGold answer: B\nStudent answer:\n答案是C")):
        user = "### Task: %s\nQuestion:\n%s\n%s%s" % (task, q, opts, extra)
        code, r = post("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": user}]})
        if code != 200 or not r["choices"][0]["message"]["content"]:
            bad.append((task, n, code, str(r)[:200]))
# an open item whose gold answer is long Chinese text: learned, then answered
gold = "肠鸣音活跃，腹膜刺激征阴性，血流动力学稳定，无需手术探查"
q = base * 3 + "，不支持腹腔内脏损伤诊断的是"
for i, task in enumerate(("explain", "answer", "answer", "answer", "answer")):
    g = "\nGold answer: " + gold if task == "explain" else ""
    user = "### Task: %s\nQuestion:\n%s%s\n%s" % (task, q, g, " " * i)  # spaces: new hashes
    code, r = post("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": user}]})
    if code != 200:
        bad.append(("open " + task, i, code, str(r)[:200]))
# prompt scoring: a Chinese character is one token, never half of one
p = "患者男性，因反复上腹部疼痛入院。The liver makes bile."
code, r = post("/v1/completions", {"model": "s", "prompt": p, "echo": True, "logprobs": 1, "max_tokens": 0})
if code != 200 or "".join(r["choices"][0]["logprobs"]["tokens"]) != p:
    bad.append(("completions", 0, code, str(r)[:300]))
for b in bad[:5]:
    print(b)
sys.exit(1 if bad else 0)
PY

printf '{"model":"m","stream":true,"messages":[{"role":"user","content":"hello"}]}' >"$tmp/stream.json"
post /v1/chat/completions "$tmp/stream.json" "$tmp/r" >/dev/null
check "stream:true gives SSE chunks and [DONE]" sh -c "grep -q '^data: {' '$tmp/r' && grep -q '^data: \[DONE\]' '$tmp/r'"

code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/nope")
check "unknown path: 404" [ "$code" = 404 ]

# --- faults, switched on at runtime through /sim/config
cfg() { printf '%s' "$1" >"$tmp/cfg.json"; post /sim/config "$tmp/cfg.json" "$tmp/cfgr"; }
code=$(cfg '{"require-key":"sekret"}')
check "config: require-key set" [ "$code" = 200 ]
code=$(post /v1/chat/completions "$tmp/explain.json" "$tmp/r")
check "require-key: 401 without the key" [ "$code" = 401 ]
code=$(post /v1/chat/completions "$tmp/explain.json" "$tmp/r" -H 'Authorization: Bearer sekret')
check "require-key: 200 with the key" [ "$code" = 200 ]
cfg '{"require-key":""}' >/dev/null
code=$(cfg '{"no-such-option":1}')
check "config: unknown option is a 400" [ "$code" = 400 ]

cfg '{"fail-500":1}' >/dev/null
code=$(post /v1/chat/completions "$tmp/explain.json" "$tmp/r")
check "fail-500: 500" [ "$code" = 500 ]
cfg '{"fail-500":0,"error-in-200":1}' >/dev/null
code=$(post /v1/chat/completions "$tmp/explain.json" "$tmp/r")
check "error-in-200: 200 carrying an error object" json "$tmp/r" "'$code'=='200' and 'error' in j"
cfg '{"error-in-200":0,"quota":1}' >/dev/null
code=$(post /v1/chat/completions "$tmp/explain.json" "$tmp/r")
check "quota: 429 insufficient_quota" json "$tmp/r" "'$code'=='429' and j['error']['code']=='insufficient_quota'"
cfg '{"quota":0,"malformed":1}' >/dev/null
code=$(post /v1/chat/completions "$tmp/explain.json" "$tmp/r")
check "malformed: 200 without usable choices" sh -c "[ '$code' = 200 ] && ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))[\"choices\"][0]' '$tmp/r' 2>/dev/null"
cfg '{"malformed":0,"truncated":1}' >/dev/null
post /v1/chat/completions "$tmp/explain.json" "$tmp/r" >/dev/null
rc=$?
check "truncated: body shorter than Content-Length (curl exit 18)" [ "$rc" = 18 ]
cfg '{"truncated":0,"timeout":1}' >/dev/null
post /v1/chat/completions "$tmp/explain.json" "$tmp/r" --max-time 1 >/dev/null
rc=$?
check "timeout: no answer (curl exit 28)" [ "$rc" = 28 ]
cfg '{"timeout":0,"fail-429":1}' >/dev/null
code=$(post /v1/chat/completions "$tmp/explain.json" "$tmp/r")
check "fail-429: 429 with Retry-After" sh -c "[ '$code' = 429 ] && grep -qi '^retry-after: ' '$tmp/r.h'"
cfg '{"fail-429":0}' >/dev/null

# --- stats and reset
curl -s -o /dev/null -X POST "$URL/sim/reset"
curl -s -o "$tmp/st" "$URL/sim/stats"
check "reset zeroes the counters" json "$tmp/st" "j['requests_total']==0 and j['sent_429']==0"

cfg '{"rpm":3}' >/dev/null
codes=""
for n in 1 2 3 4; do
  codes="$codes $(post /v1/chat/completions "$tmp/explain.json" "$tmp/r$n")"
done
check "rpm 3: three 200s then a 429" [ "$codes" = " 200 200 200 429" ]
check "200s carry x-ratelimit-remaining-requests" grep -qi '^x-ratelimit-remaining-requests: 0' "$tmp/r3.h"
check "200s carry x-ratelimit-reset-requests" grep -qi '^x-ratelimit-reset-requests: ' "$tmp/r1.h"
check "429 carries Retry-After (seconds)" grep -qiE '^retry-after: [0-9]+' "$tmp/r4.h"
cfg '{"rpm":0}' >/dev/null

curl -s -o "$tmp/st" "$URL/sim/stats"
check "stats count requests, 429s and duplicate bodies" json "$tmp/st" \
  "j['requests_total']==4 and j['sent_429']==1 and j['rate_limited_429']==1 and j['by_status']['200']==3 and j['by_status']['429']==1 and j['by_path']['/v1/chat/completions']==4 and j['max_requests_per_body']==4 and j['config']['rpm']==0"

# --- stop
kill "$pid"
wait "$pid"
rc=$?
pid=""
check "stops cleanly on SIGTERM" [ "$rc" = 0 ]
