#!/bin/sh
# /metrics passes Prometheus's own lint (issue 16): tests/promlint.py, the
# rules of `promtool check metrics` (promtool itself also runs when it is
# installed), on a busy daemon's /metrics: mid-job with calls in flight,
# retries and 429s, and after the job. The latency histogram is checked for
# what a p50/p99 query needs.
. "$(dirname "$0")/lib.inc"

LINT="python3 $top/tests/promlint.py"

# The checker itself: the old exposition (interleaved families, no HELP or
# TYPE, milliseconds as bare sum/count) is refused, a clean one passes.
cat >"$T/old.txt" <<'M'
# HELP medthink_model_retries_total Retried requests.
# TYPE medthink_model_retries_total counter
medthink_model_retries_total{endpoint="teacher.sim"} 0
medthink_model_429_total{endpoint="teacher.sim"} 0
medthink_model_retries_total{endpoint="student.local"} 0
medthink_model_latency_ms_sum{endpoint="teacher.sim"} 1.5
M
out=$($LINT "$T/old.txt"); rc=$?
expect_eq "checker: old exposition refused" "$rc" "1"
expect_match "checker: interleaved families found" "$out" "medthink_model_retries_total: .*not one group"
expect_match "checker: missing HELP found" "$out" "medthink_model_429_total: no help text"
expect_match "checker: abbreviated unit found" "$out" "latency_ms_sum: .*abbreviated units"
cat >"$T/good.txt" <<'M'
# HELP x_seconds A histogram.
# TYPE x_seconds histogram
x_seconds_bucket{le="0.5"} 1
x_seconds_bucket{le="+Inf"} 2
x_seconds_sum 1.2
x_seconds_count 2
M
check "checker: a clean exposition passes" $LINT "$T/good.txt"

start_sim T --latency-ms 20 --latency-jitter-ms 15 --fail-429 0.1 --fail-500 0.05 --seed 5 || exit 1
start_sim S --latency-ms 5 || exit 1
TEACHER_CONC=8 write_conf
start_daemon || { nok "daemon starts"; exit 1; }
"$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro >/dev/null
cat >"$T/p.json" <<J
{"name":"m1","dataset":"gastro","kind":"pipeline","teacher":"sim","student":"local",
 "eval_fraction":0.25,"seed":7,"train":"none"}
J
job=$("$BIN/medthink" submit "$T/p.json")

# mid-job: wait (by work, a hang guard only) until calls are on the wire
i=0
while :; do
  api http://x/metrics >"$T/busy.txt"
  grep -Eq '^medthink_model_in_flight\{endpoint="teacher.sim"\} [1-9]' "$T/busy.txt" && break
  i=$((i + 1)); [ $i -gt 600 ] && break
  sleep 0.05
done
expect_match "busy daemon: calls in flight" "$(cat "$T/busy.txt")" 'medthink_model_in_flight\{endpoint="teacher.sim"\} [1-9]'
check "busy /metrics passes the lint" $LINT "$T/busy.txt"

if wait_job "$job" done 180; then ok "job done"; else nok "job done" "$(api "http://x/v1/jobs/$job")"; fi
api http://x/metrics >"$T/done.txt"
check "/metrics after the job passes the lint" $LINT "$T/done.txt"
if command -v promtool >/dev/null 2>&1; then
  check "promtool check metrics (busy)" sh -c "promtool check metrics <'$T/busy.txt'"
  check "promtool check metrics (after)" sh -c "promtool check metrics <'$T/done.txt'"
fi

# what the families hold after a job with faults
python3 - "$T/done.txt" >"$T/hist.check" 2>&1 <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def val(name, **labels):
    lab = ",".join('%s="%s"' % kv for kv in labels.items())
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(lab)), text, re.M)
    assert m, ("missing", name, labels)
    return float(m.group(1))
for ep in ("teacher.sim", "student.local"):
    n = val("medthink_model_latency_seconds_count", endpoint=ep)
    assert n > 0, ("latency count", ep)
    assert val("medthink_model_latency_seconds_bucket", endpoint=ep, le="+Inf") == n
    assert val("medthink_model_latency_seconds_sum", endpoint=ep) > 0
    les = re.findall(r'^medthink_model_latency_seconds_bucket\{endpoint="%s",le="([^"]+)"\}' % re.escape(ep), text, re.M)
    assert len(les) >= 10, ("buckets", les)
# the teacher's replies took 5..35 ms plus retries: most under a second
assert val("medthink_model_latency_seconds_bucket", endpoint="teacher.sim", le="1") > 0
assert val("medthink_model_429_total", endpoint="teacher.sim") > 0, "429s counted"
assert val("medthink_model_retries_total", endpoint="teacher.sim") > 0, "retries counted"
assert val("medthink_model_cost_usd_total", endpoint="teacher.sim") > 0, "cost"
assert "latency_ms" not in text
print("ok")
PY
if [ "$(tail -n 1 "$T/hist.check")" = ok ]; then ok "latency histogram, 429s, retries and cost per endpoint"; else nok "latency histogram, 429s, retries and cost per endpoint" "$(cat "$T/hist.check")"; fi
stop_daemon -TERM
expect_eq "daemon stops cleanly" "$DAEMON_RC" "0"
exit $_failed
