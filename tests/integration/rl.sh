#!/bin/sh
# MedVLM-R1 end to end: a VQA set in the MedVLM-R1/OmniMedVQA JSON layout
# with images (read by the CLI, sent as data: URLs), bad image inputs
# refused with nothing stored, an rl job sampling 4 completions per item
# from the simulated student (each sample sent once, seeded), its report,
# the filtered grpo export read back by the TRL column check, and
# `medthink score` / POST /v1/score over the same rewards.
. "$(dirname "$0")/lib.inc"

start_sim S --latency-ms 1 || exit 1
write_conf
start_daemon || { nok "daemon starts"; exit 1; }

mkdir -p "$T/vqa/images" "$T/outside"
python3 - "$T/vqa" <<'PY'
import json, struct, sys, zlib
d = sys.argv[1]
def png(path, shade):
    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xffffffff)
    raw = b"".join(b"\x00" + bytes([shade, shade, shade]) * 4 for _ in range(4))
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    open(path, "wb").write(data)
recs = []
for i in range(12):
    png("%s/images/scan%02d.png" % (d, i), 20 * i)
    opts = ["Hemorrhage %d" % i, "Acute infarct", "Abscess formation", "Chronic infarct"]
    k = i % 4
    recs.append({"image": ["images/scan%02d.png" % i],
                 "problem": "What is apparent in this image (case %d)?\n" % i
                            + "\n".join("%s) %s" % ("ABCD"[j], o) for j, o in enumerate(opts)),
                 "solution": "ABCD"[k], "question": "What is apparent in this image (case %d)?" % i,
                 "options": opts, "answer": opts[k], "dataset": "OmniMedVQA",
                 "subset": "MR (Mag-netic Resonance Imaging)"})
json.dump(recs, open(d + "/vqa.json", "w"), indent=2)
def bad(name, image):
    r = dict(recs[0]); r["image"] = [image]
    json.dump([recs[1], r], open("%s/%s.json" % (d, name), "w"))
bad("abs", d + "/images/scan00.png")
bad("dotdot", "../outside/x.png")
bad("link", "images/link.png")
bad("text", "images/notes.png")
bad("missing", "images/nope.png")
bad("big", "images/big.png")
bad("ext", "images/scan00.txt")
PY
cp "$T/vqa/images/scan00.png" "$T/outside/x.png"
ln -s "$T/outside/x.png" "$T/vqa/images/link.png"
echo "not an image" >"$T/vqa/images/notes.png"
cp "$T/vqa/images/scan00.png" "$T/vqa/images/scan00.txt"
truncate -s 17M "$T/vqa/images/big.png"

ds=$("$BIN/medthink" import "$T/vqa/vqa.json" --format medvlm --name vqa 2>"$T/imp.err")
if [ -n "$ds" ]; then ok "import --format medvlm"; else nok "import --format medvlm" "$(cat "$T/imp.err")"; fi
api "http://x/v1/datasets/$ds" | jq_py 'd["items"]' >"$T/n"
expect_eq "12 VQA items stored" "$(cat "$T/n")" 12

# bad image inputs: a clear error naming the record and the path; nothing stored
before=$("$BIN/medthink" --json list | jq_py 'len(d["datasets"])')
for b in abs:"an absolute path" dotdot:"outside the dataset's folder" link:"outside the dataset's folder" \
         text:"not a PNG, JPEG, GIF, WebP or BMP" missing:"No such file or directory" \
         big:"over the 16777216 byte limit" ext:"unsupported type"; do
  name=${b%%:*}; want=${b#*:}
  if "$BIN/medthink" import "$T/vqa/$name.json" --format medvlm >"$T/bad.out" 2>"$T/bad.err"; then
    nok "bad image ($name) refused" "import succeeded"
  else
    expect_match "bad image ($name): $want" "$(cat "$T/bad.err")" "record 2: image \".*\": .*$want"
  fi
done
after=$("$BIN/medthink" --json list | jq_py 'len(d["datasets"])')
expect_eq "nothing stored by the refused imports" "$after" "$before"
# a path sent straight to the daemon is refused, never opened
code=$(api_code POST "/v1/datasets?name=raw&format=medvlm" --data-binary @"$T/vqa/vqa.json")
expect_eq "daemon refuses image paths (422)" "$code" 422
expect_match "daemon names the path and the CLI way" "$(cat "$T/last.json")" "is a file path, which the daemon never opens"

# the rl job
cat >"$T/rl.json" <<J
{"name":"vqa-rl","dataset":"vqa","kind":"rl","student":"local",
 "rl":{"num_generations":4,"temperature":1.0,"keep":"mixed"}}
J
code=$(api_code POST /v1/jobs?dry_run=1 --data-binary @"$T/rl.json")
expect_eq "dry run of an rl job" "$code" 200
expect_match "dry run counts 4 calls per item" "$(cat "$T/last.json")" '"step": *"rl_sample"[^}]*"calls": *48'
job=$("$BIN/medthink" submit "$T/rl.json")
if wait_job "$job" done 120; then ok "rl job done"; else nok "rl job done" "$(api http://x/v1/jobs/$job)"; fi
"$BIN/medthink" --json status "$job" >"$T/st.json"
python3 - "$T/st.json" >"$T/st.check" 2>&1 <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
rl = s["rl"]
assert rl["items"] == 12 and rl["samples"] == 48, rl
h = rl["pass_rate_histogram"]
assert sum(h.values()) == 12, h
assert len([v for v in h.values() if v]) >= 2, "pass rates should differ across items: %s" % h
assert rl["kept"] == sum(v for k, v in h.items() if k not in ("0", "1")), rl
assert rl["format_failures"] >= 1, "the simulator's malformed samples: %s" % rl
assert s["counts"]["rl_sample"]["done"] == 12, s["counts"]
print("ok", rl["kept"])
PY
kept=$(tail -n 1 "$T/st.check" | sed -n 's/^ok //p')
if [ -n "$kept" ]; then ok "rl report: histogram, kept, format failures"; else nok "rl report" "$(cat "$T/st.check")"; fi
calls=$(sim_stats "$SIM_PORT_S" | jq_py 'd["requests_total"]')
expect_eq "one request per sample (48)" "$calls" 48

# each sample is its own request (seed 1..4), sent with the item's image as a data: URL part
python3 - "$T/var/medthink.db" >"$T/calls.check" 2>&1 <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
seeds, imgs = {}, 0
for (req,) in db.execute("select request from calls"):
    r = json.loads(req)
    seeds[r.get("seed")] = seeds.get(r.get("seed"), 0) + 1
    assert r.get("temperature") == 1.0, r.get("temperature")
    parts = r["messages"][-1]["content"]
    assert parts[0]["type"] == "text" and "Your task:" in parts[0]["text"], parts[0]
    imgs += sum(1 for p in parts if p["type"] == "image_url" and p["image_url"]["url"].startswith("data:image/png;base64,"))
assert seeds == {1: 12, 2: 12, 3: 12, 4: 12}, seeds
assert imgs == 48, imgs
print("ok")
PY
expect_eq "samples seeded 1..4, image parts sent" "$(tail -n 1 "$T/calls.check")" ok

# the grpo export: the kept items, TRL's columns
"$BIN/medthink" export "$job" --set 1 --format grpo -o "$T/grpo.jsonl" 2>"$T/exp.err"
n=$(grep -c . "$T/grpo.jsonl")
expect_eq "grpo export holds the kept items" "$n" "$kept"
out=$(python3 "$top/tests/trl_grpo_check.py" "$T/grpo.jsonl" "$kept")
expect_eq "grpo export passes the TRL column check" "$out" "ok $kept"

# a second identical job: every sample comes from the store, nothing is sent
job2=$("$BIN/medthink" submit "$T/rl.json")
wait_job "$job2" done 60 || nok "second rl job done"
calls=$(sim_stats "$SIM_PORT_S" | jq_py 'd["requests_total"]')
expect_eq "a stored sample is never sent again" "$calls" 48

# medthink score: the same rewards over the socket
ids=$(python3 -c "import json,sys; [print(json.loads(l)['id']) for l in open(sys.argv[1])]" "$T/grpo.jsonl" | head -n 1)
[ -n "$ids" ] || ids=$(api "http://x/v1/jobs/$job/items/0" | jq_py 'd["item"]["id"]')
gold=$(api "http://x/v1/jobs/$job/items/$ids" | jq_py 'd["item"]["answer"]')
python3 - "$ids" "$gold" >"$T/comp.jsonl" <<'PY'
import json, sys
i, g = sys.argv[1], sys.argv[2]
w = "B" if g != "B" else "C"
for c in ["<think>x</think><answer>%s</answer>" % g, "<think>x</think>\n<answer>%s.</answer>" % g,
          "<answer>%s</answer>" % g, "<think>x</think><answer>%s</answer>" % w, "no tags"]:
    print(json.dumps({"id": i, "completion": c}))
PY
"$BIN/medthink" score "$T/comp.jsonl" --dataset vqa >"$T/score.out" 2>"$T/score.err"
got=$(python3 -c "
import json,sys
print(' '.join('%g/%g' % (d['format_reward'], d['accuracy_reward']) for d in map(json.loads, open(sys.argv[1]))))" "$T/score.out")
expect_eq "medthink score: format/accuracy per completion" "$got" "1/1 1/0.5 0/1 1/0 0/0"
expect_match "medthink score prints a summary" "$(cat "$T/score.err")" "^5 completions \\(rules r1\\): format reward 1 on 3, 0 on 2; accuracy 1 on 2, 0.5 on 1, 0 on 2"
"$BIN/medthink" score "$T/comp.jsonl" --dataset vqa --rules strict >"$T/score2.out" 2>/dev/null
got=$(python3 -c "
import json,sys
print(' '.join('%g' % d['accuracy_reward'] for d in map(json.loads, open(sys.argv[1]))))" "$T/score2.out")
expect_eq "medthink score --rules strict" "$got" "1 0 1 0 0"
code=$(api_code POST "/v1/score?dataset=vqa" --data-binary '{"id":"nope","completion":"x"}')
expect_eq "score: an unknown item is 422" "$code" 422
expect_match "score names the line and the id" "$(cat "$T/last.json")" 'line 1: dataset ds_[0-9]+ has no item \\"nope\\"'
code=$(api_code POST "/v1/score?dataset=vqa" --data-binary 'not json')
expect_eq "score: a bad line is 400" "$code" 400
code=$(api_code POST "/v1/score?dataset=nope" --data-binary '')
expect_eq "score: an unknown dataset is 404" "$code" 404
"$BIN/medthink" score "$T/comp.jsonl" >/dev/null 2>&1
expect_eq "score without --dataset is a usage error" "$?" 2
# status text and a format with no text to export
out=$("$BIN/medthink" status "$job")
expect_match "status shows the rl report" "$out" "^rl +12 items, 48 samples, [0-9]+ format failures; keep mixed: $kept kept"
expect_match "status shows the pass-rate histogram" "$out" "pass rate 0: [0-9]+ \\(0,0.25\\]: [0-9]+"
if "$BIN/medthink" export "$job" --set 1 --format openai >/dev/null 2>"$T/exp2.err"; then
  nok "an rl job exports only grpo"
else
  expect_match "an rl job exports only grpo" "$(cat "$T/exp2.err")" "is an rl job: its set is a prompt set"
fi

# crash safety: kill -9 while samples come in, restart; every sample is
# stored once, and only calls in flight at a kill are sent again
cat >"$T/rl3.json" <<J
{"name":"vqa-rl3","dataset":"vqa","kind":"rl","student":"local",
 "rl":{"num_generations":3,"temperature":0.7,"keep":"all"}}
J
sim_field() { sim_stats "$SIM_PORT_S" | tr -d ' ' | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
gate() { curl -s -o /dev/null -X POST -d "{\"hold-after\":$1}" "http://127.0.0.1:$SIM_PORT_S/sim/config"; }
before=$(sim_stats "$SIM_PORT_S" | jq_py 'd["requests_total"]')
gate 5
job3=$("$BIN/medthink" submit "$T/rl3.json")
kills=0
for n in 7 4 9; do
  i=0
  while [ "$(sim_field gate_left)" -gt 0 ]; do
    i=$((i + 1)); [ $i -gt 1200 ] && break
    sleep 0.05
  done
  stop_daemon -KILL
  kills=$((kills + 1))
  gate "$n"
  start_daemon || { nok "restart after kill $kills"; exit 1; }
done
gate 0
if wait_job "$job3" done 120; then ok "rl job finishes after $kills kills"; else nok "rl job finishes after kills" "$(api http://x/v1/jobs/$job3)"; fi
j3=${job3#job_}
python3 - "$T/var/medthink.db" "$j3" >"$T/crash.check" 2>&1 <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1]); j = int(sys.argv[2])
arts = [json.loads(c) for (c,) in db.execute("select content from artifacts where job_id=? and kind='rl'", (j,))]
assert len(arts) == 12, len(arts)
assert all(len(a["samples"]) == 3 and "pass_rate" in a for a in arts), [len(a["samples"]) for a in arts]
dups = db.execute("select count(*) from (select hash from calls where job_id=? and error is null group by hash having count(*)>1)", (j,)).fetchone()[0]
assert dups == 0, dups
print(db.execute("select count(*) from calls where job_id=?", (j,)).fetchone()[0])
PY
stored=$(tail -n 1 "$T/crash.check")
expect_eq "every sample stored once after the kills (36 calls)" "$stored" 36
sent=$(( $(sim_stats "$SIM_PORT_S" | jq_py 'd["requests_total"]') - before ))
extra=$((sent - 36))
[ $extra -ge 0 ] && [ $extra -le $((kills * 8)) ] && ok "re-sent only samples in flight at a kill ($extra <= $((kills * 8)))" || nok "re-sent only in-flight samples" "sent $sent, kills $kills"
exit $_failed
