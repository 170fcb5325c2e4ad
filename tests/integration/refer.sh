#!/bin/sh
# The refer job end to end (docs/refer.md): a folder of generated image +
# mask PNGs imported with --format masks, a refer job against the simulator
# (expressions written, each screened by its own call; the simulator's
# deliberate wrong and ambiguous expressions dropped), the refcoco and lvit
# exports validated by a standard-library reader; bad inputs refused with
# their file named and nothing stored; a SIGKILL mid-job loses nothing.
. "$(dirname "$0")/lib.inc"

D="$T/lsms"
python3 "$top/tests/refer_pngs.py" "$D" 3 || { nok "generate the PNGs"; exit 1; }
start_sim T || exit 1
write_conf
start_daemon || { nok "daemon starts"; exit 1; }

# --- bad inputs: each names the file and the problem, nothing is stored
bad() { # NAME DIR REGEX
  out=$("$BIN/medthink" import "$2" --format masks --name bad 2>&1); rc=$?
  if [ "$rc" != 0 ] && printf '%s' "$out" | grep -Eq -- "$3"; then ok "$1"; else nok "$1" "rc=$rc: $out"; fi
}
bad "size mismatch refused, naming the files" "$D/bad/size" "mask/a.png is 40x40 pixels but its image img/a.png is 48x40"
bad "empty mask refused" "$D/bad/empty" "mask/a.png: the mask is empty"
bad "non-PNG image refused" "$D/bad/notpng" "img/a.png: not a PNG \(it is image/jpeg; convert it to PNG\)"
bad "oversized image refused" "$D/bad/big" "img/a.png: 4097x1 pixels, larger than 4096x4096"
bad "a folder without img/ refused" "$T" "img: No such file or directory"
code=$(api_code GET /v1/datasets/bad)
expect_eq "nothing stored after the refusals" "$code" "404"
# the daemon checks too: a masks line whose mask is not a PNG
printf '{"id":"x","file":"x.png","image":"data:image/png;base64,AAAA","mask":"data:image/png;base64,AAAA"}\n' >"$T/raw.jsonl"
code=$(api_code POST "/v1/datasets?name=raw&format=masks" --data-binary @"$T/raw.jsonl")
expect_eq "the daemon refuses a masks line that is not PNG data: 422" "$code" "422"
expect_match "... naming the file and the problem" "$(cat "$T/last.json")" "x.png: the image: not a PNG"

# --- import: 3 pairs, 3 + 2 + 1 lesions = 6 region items
ds=$("$BIN/medthink" import "$D/" --format masks --name lsms 2>"$T/imp.err"); rc=$?
expect_eq "import --format masks: exit 0" "$rc" "0"
items=$(api http://x/v1/datasets/lsms | jq_py 'd["items"]')
expect_eq "one item per lesion" "$items" "6"
# the JSONL layout naming both
printf '{"image":"img/case0.png","mask":"mask/case0.png"}\n{"id":"c2","image":"img/case2.png","mask":"mask/case2.png"}\n' >"$D/pairs.jsonl"
out=$("$BIN/medthink" import "$D/pairs.jsonl" --format masks --name lsms-jsonl 2>&1); rc=$?
expect_eq "import --format masks FILE.jsonl: exit 0" "$rc" "0"

# --- the refer job
cat >"$T/r.json" <<J
{"name":"refer","dataset":"lsms","kind":"refer","teacher":"sim","refer":{"expressions_per_region":3},"seed":1}
J
est=$("$BIN/medthink" --json submit "$T/r.json" --dry-run | jq_py 'd["total"]["calls"]')
expect_eq "dry run: 6 regions x (1 + 3) calls" "$est" "24"
code=$(api_code POST /v1/jobs --data-binary '{"dataset":"lsms","kind":"refer","teacher":"sim","refer":{"expressions_per_region":6}}')
expect_eq "expressions_per_region 6 refused: 422" "$code" "422"
expect_match "... naming the field" "$(cat "$T/last.json")" "refer.expressions_per_region must be an integer from 1 to 5"
code=$(api_code POST /v1/jobs --data-binary '{"dataset":"lsms","kind":"stage1","teacher":"sim","refer":{}}')
expect_eq "refer on another kind refused: 422" "$code" "422"
job=$("$BIN/medthink" submit "$T/r.json")
if wait_job "$job" done 120; then ok "refer job done"; else nok "refer job done" "$(api http://x/v1/jobs/$job)"; fi
db="$T/var/medthink.db"
j=${job#job_}
expect_eq "6 regions written for" "$(sqlite3 "$db" "select count(*) from artifacts where job_id=$j and kind='refer_expressions'")" "6"
expect_eq "18 expressions screened, one call each" "$(sqlite3 "$db" "select count(*) from artifacts where job_id=$j and kind like 'refer_check%'")" "18"
calls=$(sqlite3 "$db" "select count(*) from calls where job_id=$j and error is null")
expect_eq "24 calls stored" "$calls" "24"
kept=$(sqlite3 "$db" "select count(*) from artifacts where job_id=$j and kind like 'refer_check%' and json_extract(content,'\$.kept')=1")
wrong=$(sqlite3 "$db" "select count(*) from artifacts where job_id=$j and kind like 'refer_check%' and json_extract(content,'\$.reason') like 'dropped: the screener picked region%'")
amb=$(sqlite3 "$db" "select count(*) from artifacts where job_id=$j and kind like 'refer_check%' and json_extract(content,'\$.reason') like 'dropped: ambiguous%'")
# case0 (3 lesions): e1 e2 kept, e3 wrong; case1 (2 touching, both "left"):
# e1 kept, e2 ambiguous, e3 wrong; case2 (1 lesion): all kept
expect_eq "kept expressions" "$kept" "11"
expect_eq "dropped: wrong pick" "$wrong" "5"
expect_eq "dropped: ambiguous" "$amb" "2"
img=$(sqlite3 "$db" "select count(*) from calls where job_id=$j and request like '%image_url%image_url%'")
expect_eq "every call sent the image and an overlay" "$img" "24"
expect_match "the phase summary is logged" "$("$BIN/medthink" logs "$job" 2>&1)" "refer done: 6 regions written for \(0 failed\), 18 expressions screened"

# --- exports: one refcoco document, the lvit table; read back with the stdlib
out=$("$BIN/medthink" export "$job" --set 1 --format refcoco -o "$T/refs.json" 2>&1); rc=$?
expect_eq "export --format refcoco: exit 0" "$rc" "0"
summary=$(python3 "$top/tests/refer_reader.py" refcoco "$T/refs.json" 2>&1); rc=$?
expect_eq "refcoco document valid (stdlib reader)" "$rc" "0"
# 3 images, 6 annotations, a ref for every region (each kept at least its
# first expression), 11 kept sentences
expect_eq "refcoco: what it holds" "$summary" "refcoco: 3 images, 6 annotations, 6 refs, 11 sentences"
out=$("$BIN/medthink" export "$job" --set 1 --format lvit -o "$T/text.csv" 2>&1); rc=$?
expect_eq "export --format lvit: exit 0" "$rc" "0"
summary=$(python3 "$top/tests/refer_reader.py" lvit "$T/text.csv" "$T/refs.json" 2>&1); rc=$?
expect_eq "lvit table valid, one row per ref" "$rc:$summary" "0:lvit: 6 rows"
code=$(api_code GET "/v1/jobs/$job/export?format=refcoco")
expect_eq "GET .../export?format=refcoco: 200" "$code" "200"
