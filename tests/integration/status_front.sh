#!/bin/sh
# Status, list, metrics and health come from the front thread's snapshots
# (daemon/front.c, daemon/snapshot.c) while the main loop is busy with a job
# of 3,000 items at 128 in flight; everything else is handed over to the
# main loop on the same connection. Sized by work: the simulator answers
# 2,000 calls and then holds the rest until the checks are done (the job
# stays running), a number of polls and of pause/resume rounds; every read
# right after an action must show it.
. "$(dirname "$0")/lib.inc"

N=3000
start_sim T --latency-ms 5 || exit 1
gate() { curl -s -o /dev/null -X POST -d "{\"hold-after\":$1}" "http://127.0.0.1:$SIM_PORT_T/sim/config"; }
gate 2000
start_sim S --latency-ms 5 || exit 1
TEACHER_CONC=128 write_conf
start_daemon || { nok "daemon starts"; exit 1; }
python3 "$top/bench/gen_items.py" $N "$T/items.jsonl" --prefix sf >/dev/null
"$BIN/medthink" import "$T/items.jsonl" --name sf >/dev/null

cat >"$T/drive.py" <<'PY'
import json, socket, sys

import time
sock, n_items = sys.argv[1], int(sys.argv[2])
failures = []

def fail(msg):
    failures.append(msg)

class Conn:
    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(60)  # a hang guard only
        self.s.connect(sock)
        self.buf = b""

    def send(self, method, path, body=b""):
        self.s.sendall(self.raw(method, path, body))

    @staticmethod
    def raw(method, path, body=b""):
        return ("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                % (method, path, len(body))).encode() + body

    def read(self):
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ")[1])
        n = 0
        for line in head.split(b"\r\n")[1:]:
            k, v = line.split(b":", 1)
            if k.strip().lower() == b"content-length":
                n = int(v)
        while len(rest) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("connection closed")
            rest += d
        self.buf = rest[n:]
        return status, rest[:n]

    def req(self, method, path, body=b""):
        self.send(method, path, body)
        return self.read()

def done_of(st):
    c = st.get("counts", {}).get("explain", {})
    return c.get("done", 0) + c.get("failed", 0) + c.get("dropped", 0)

# 1. Eight keep-alive clients, connected before the submit, poll in turn
#    from the submit on until the job has 1,000 items done (and at least
#    300 rounds): every answer is this job's status, progress never goes
#    back, and the polls see it move while the main loop does the work.
conns = [Conn() for _ in range(8)]
last = [0] * len(conns)
polls = 0
seen = set()
spec = b'{"name":"sf","dataset":"sf","kind":"stage1","teacher":"sim","selection":{"strategy":"none"},"eval_fraction":0}'
status, body = Conn().req("POST", "/v1/jobs", spec)
job = json.loads(body).get("id") if status == 201 else None
print("job %s" % job)
if not job:
    print("failure: submit: %d %s" % (status, body[:200]))
    sys.exit(1)
guard = time.monotonic() + 120  # a hang guard only
rnd = 0
while (rnd < 300 or min(last) < 1000) and time.monotonic() < guard:
    rnd += 1
    for i, c in enumerate(conns):
        c.send("GET", "/v1/jobs/" + job)
    for i, c in enumerate(conns):
        status, body = c.read()
        st = json.loads(body)
        if status != 200 or st.get("id") != job:
            fail("poll: %d %s" % (status, body[:200]))
            continue
        if done_of(st) < last[i]:
            fail("poll: progress went back from %d to %d" % (last[i], done_of(st)))
        last[i] = done_of(st)
        seen.add(last[i])
        polls += 1
print("polls %d rounds %d progress values seen %d" % (polls, rnd, len(seen)))
print("all polls answered: %s" % (polls == 8 * rnd and rnd >= 300))
print("progress seen moving: %s" % (len(seen) >= 2 and min(last) >= 1000))
running_seen = all(0 < d < n_items for d in last)

# 2. Pause and resume, five rounds: on a fresh connection and on a
#    keep-alive one that polled first (the action hands it to the main
#    loop), the status read right after the action's answer shows it.
k = conns[0]
rounds = 0
for rnd in range(5):
    for action, want in (("pause", "paused"), ("resume", "running")):
        status, body = Conn().req("POST", "/v1/jobs/%s/%s" % (job, action))
        if status != 200:
            fail("%s: %d %s" % (action, status, body[:200]))
            continue
        if json.loads(body).get("state") == "done":
            break
        got = json.loads(Conn().req("GET", "/v1/jobs/" + job)[1]).get("state")
        if got != want and got != "done":
            fail("after %s (fresh connection): state %s, want %s" % (action, got, want))
        got = json.loads(conns[rnd % 8 + 0].req("GET", "/v1/jobs/" + job)[1]).get("state")
        if got != want and got != "done":
            fail("after %s (polling connection): state %s, want %s" % (action, got, want))
        lst = json.loads(Conn().req("GET", "/v1/jobs")[1])
        got = [j.get("state") for j in lst["jobs"] if j.get("id") == job]
        if got != [want] and got != ["done"]:
            fail("after %s: list says %s, want %s" % (action, got, want))
        rounds += 1
print("rounds %d" % rounds)

# 3. Pipelined on one connection: status (front), pause (handed over
#    mid-connection), status (now on the main loop), resume, status.
p = Conn()
p.s.sendall(Conn.raw("GET", "/v1/jobs/" + job) + Conn.raw("POST", "/v1/jobs/%s/pause" % job) +
            Conn.raw("GET", "/v1/jobs/" + job) + Conn.raw("POST", "/v1/jobs/%s/resume" % job) +
            Conn.raw("GET", "/v1/jobs/" + job))
answers = [p.read() for _ in range(5)]
states = [json.loads(b).get("state") for _, b in answers]
codes = [s for s, _ in answers]
print("pipelined %s %s" % (codes, states))
if codes != [200] * 5:
    fail("pipelined: codes %s" % codes)
elif "done" not in states and states[1:] != ["paused", "paused", "running", "running"]:
    fail("pipelined: states %s" % states)

# 4. Ids the front does not know go to the main loop: a name, a missing job.
status, body = Conn().req("GET", "/v1/jobs/sf")
if status != 200 or json.loads(body).get("id") != job:
    fail("by name: %d %s" % (status, body[:200]))
status, body = Conn().req("GET", "/v1/jobs/job_999999")
if status != 404:
    fail("missing job: %d" % status)
# 5. Requests the front does not take are answered by the main loop as
#    before: no route, a request line without a version, garbage, and a
#    request after an empty line (the front's own).
for raw, want in ((b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
                  (b"GET /v1/health\r\n\r\n", 200),  # http-parser takes it (HTTP/0.9)
                  (b"BLAH\r\n\r\n", 400),
                  (b"\r\nGET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n", 200)):
    c = Conn()
    c.s.sendall(raw)
    try:
        status = c.read()[0]
    except (EOFError, OSError) as e:
        status = str(e)
    if status != want:
        fail("%r: %s, want %d" % (raw, status, want))
print("running_seen %s %s" % (running_seen, last))
for f in failures[:10]:
    print("failure: " + f)
sys.exit(1 if failures else 0)
PY
out=$(python3 "$T/drive.py" "$MEDTHINK_SOCKET" $N 2>&1); rc=$?
job=$(printf '%s\n' "$out" | sed -n 's/^job //p')
expect_match "job submitted" "$job" '^job_[0-9]+$'
printf '%s\n' "$out" | sed 's/^/# /'
expect_eq "status, list and actions agree under load" "$rc" "0"
expect_match "every poll answered (8 clients, >= 300 rounds)" "$out" "all polls answered: True"
expect_match "polls saw the job move" "$out" "progress seen moving: True"
expect_match "10 pause/resume rounds seen at once" "$out" "rounds 10"
expect_match "polled while the job ran" "$out" "running_seen True"

gate 0
if wait_job "$job" done 300; then ok "job done"; else nok "job done" "$(api "http://x/v1/jobs/$job")"; fi
# The end is in every snapshot as soon as the job says so.
st=$(api "http://x/v1/jobs/$job")
expect_eq "status: every item finished" "$(echo "$st" | jq_py 'sum(d["counts"]["explain"][k] for k in ("done","failed","dropped"))')" "$N"
expect_eq "list: done" "$(api http://x/v1/jobs | jq_py '[j["state"] for j in d["jobs"] if j["id"]=="'"$job"'"][0]')" "done"
m=$(api http://x/metrics)
expect_match "metrics: the job counted done" "$m" 'medthink_jobs\{state="done"\} 1'
expect_match "metrics: front requests counted" "$m" 'medthink_api_requests_total [0-9]{4,}'
expect_eq "health" "$(api http://x/v1/health | jq_py 'd["status"]')" "ok"
# everything else still works through the hand-over
code=$(api_code GET "/v1/jobs/$job/items?limit=1")
expect_eq "items route handed over" "$code" "200"
expect_match "events stream handed over" "$(api "http://x/v1/jobs/$job/events")" 'event: state'
check "export streams" sh -c "curl -sf --unix-socket '$MEDTHINK_SOCKET' 'http://x/v1/jobs/$job/export?set=1' | head -c 1 | grep -q ."

stop_daemon
expect_eq "daemon exits cleanly" "$DAEMON_RC" "0"
exit $_failed
