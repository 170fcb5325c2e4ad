#!/bin/sh
# make demo: runs the whole MedThink pipeline on the project's sample dataset
# against the SIMULATOR (bin/medthink-sim, a fake OpenAI-compatible server
# that imitates a teacher and a student; it is not a model). Everything goes
# through the real daemon, store and CLI; with real endpoints in the config
# the same commands run for real (docs/tutorial.md).
#
# Starts: the simulator on 127.0.0.1:8090 (playing teacher and student) and
# medthinkd with conf/medthinkd.conf (state in ./var). Writes ./out/:
# set1-*.jsonl, set2-*.jsonl (every export format), eval-report.json,
# eval-report.md (the checkpoint table), eval.svg, funnel.svg, progress.svg,
# status.json. Stops what it started when it ends.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BIN=${BIN:-bin}
CONF=${CONF:-conf/medthinkd.conf}
export MEDTHINK_SOCKET="$top/var/medthinkd.sock"
mkdir -p var out
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

if "$BIN/medthink" health >/dev/null 2>&1; then
  echo "demo: a medthinkd is already running on $MEDTHINK_SOCKET; stop it first" >&2
  exit 1
fi

echo "== starting the simulator on :8090 (a fake model server playing teacher and student)"
"$BIN/medthink-sim" --listen 127.0.0.1:8090 --latency-ms 400 --latency-jitter-ms 300 \
  >var/sim.log 2>&1 &
pids="$pids $!"

echo "== starting medthinkd ($CONF, state in ./var, log in var/medthinkd.log)"
"$BIN/medthinkd" -c "$CONF" 2>var/medthinkd.log &
dpid=$!
pids="$dpid $pids"
i=0
until "$BIN/medthink" health >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 "$dpid" 2>/dev/null; then
    echo "demo: medthinkd did not start; var/medthinkd.log says:" >&2
    tail -n 20 var/medthinkd.log >&2
    exit 1
  fi
  sleep 0.1
done

echo "== importing examples/gastro-sample.jsonl (a sample written for this project)"
err=$(mktemp)
if ds=$("$BIN/medthink" import examples/gastro-sample.jsonl --name gastro-sample 2>"$err"); then
  echo "dataset: $ds"
elif grep -q 'already exists' "$err"; then
  # a second make demo on the same ./var: the sample is there; the new job's
  # calls are answered from the store (nothing is paid twice)
  echo "dataset: gastro-sample (imported by an earlier make demo, used again)"
else
  cat "$err" >&2
  rm -f "$err"
  exit 1
fi
rm -f "$err"

echo "== submitting examples/pipeline.json (stage one, stage two, eval; train: none)"
job=$("$BIN/medthink" submit examples/pipeline.json)
echo "job: $job"
"$BIN/medthink" status "$job" --watch

echo "== exporting both SFT sets in every format to ./out"
for set in 1 2; do
  for fmt in openai sharegpt alpaca grpo; do
    "$BIN/medthink" export "$job" --set $set --format $fmt -o "out/set$set-$fmt.jsonl"
  done
  echo "set $set: $(wc -l <"out/set$set-openai.jsonl") records"
done
"$BIN/medthink" status "$job" --json >out/status.json
python3 - "$top/out/status.json" "$top/out/eval-report.json" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
ev = st.get("eval") or {}
json.dump(ev, open(sys.argv[2], "w"), indent=2, ensure_ascii=False)
print("eval: accuracy %.1f%% on %d held-out items (%d ungraded, %d judged)" % (
    100 * ev.get("accuracy", 0), ev.get("total", 0), ev.get("ungraded", 0), ev.get("judged", 0)))
for topic, t in sorted((ev.get("by_topic") or {}).items()):
    print("  %-14s %d/%d" % (topic, t.get("correct", 0), t.get("total", 0)))
PY
"$BIN/medthink" eval-report "$job" -o out/eval-report.md
for what in eval funnel progress; do
  "$BIN/medthink" plot "$job" --what $what -o "out/$what.svg"
done
"$BIN/medthink" status "$job"
echo "== done: results in ./out, every call and artifact in ./var/medthink.db"
