#!/usr/bin/python3
"""medthink benchmarks: `make bench` runs this through bench/run.sh.

Starts its own simulators (bin/medthink-sim) and daemons (bin/medthinkd) on
loopback and a temporary directory, runs the four benchmarks of the issue,
and writes docs/PERFORMANCE.md (plus build/bench/results.json).

  1 throughput  20,000 stage-one items, sim latency 100 ms, 512 in flight:
                (a) medthinkd, (b) bare libcurl-multi (build/bench/curl_multi),
                (c) asyncio + aiohttp + sqlite3 (bench/aiohttp_sqlite.py)
  2 ratelimit   rpm = sim limit, tpm = sim limit (token-heavy), sim limit
                below the config (429s absorbed); the three run side by side
  3 scale       1M items: import, daemon RSS and GET /v1/jobs/{id} latency
                during the job, export rate of each format
  4 resume      the same 1M job SIGKILLed near its end (BENCH_KILL_LEFT items
                left, default 2000): restart to first new call, and no stored
                call sent again
  5 pool        a student pool of 1, 2 and 4 simulated replicas at a fixed
                concurrency per replica: calls/s as ratios to one replica
  6 selection   the DIQ-like and 3DS choice at 100k items (build/bench/select_cost):
                time and peak memory of the selection step itself, as a ratio
                to importing the same items
  7 e2e         submit to done as a user times it, at two sizes (BENCH_E2E_N,
                default 20000,200000): medthinkd, the bare curl-multi loop and
                the aiohttp script on the same bodies, one after the other;
                fixed cost and marginal rate from the two sizes, time to
                first call, CPU per call (whole process and loop thread) and
                peak RSS; BENCH_E2E_ROUNDS rounds per size (default 3), the
                daemon and the bare loops alternating (a b r, r b a, ...);
                (r) is the issue's own bare loop, ../shared/bench/curlmulti.c
                unchanged, built here with gcc
  8 status      GET /v1/jobs/{id} latency with 50 clients polling during a
                512-in-flight job (BENCH_STATUS_N items, BENCH_STATUS_S s):
                build/bench/status_poll, or a Python fallback if it is missing
  9 reference   the issues' own script, ../shared/bench/compare.sh, unchanged
                (nginx + echo module as the teacher; its bare loop parses each
                reply with jansson): at BENCH_REF_N (20000,200000),
                BENCH_REF_ROUNDS runs each (2); BENCH_REF_AIO=0 skips its
                aiohttp script. Its poll starts a python3 every 0.2 s: when
                the PATH's python3 is not Debian's (a pyenv shim takes ~0.4 s
                to start), these runs put /usr/bin/python3 first on the
                script's PATH and one extra run keeps the PATH's, shown
                apart; BENCH_REF_PY=path runs them all with the PATH's
  issue17       BENCH_ONLY=issue17 runs exactly what decides issue 17 (e2e at
                20k and 200k without aiohttp, the reference script, status,
                the 1M job, its kill near
                the end and restart; no exports) and prints the "Issue 17
                targets" table (also part of the default full run)

Environment: BIN (bin), B (build), BENCH_ONLY (comma list of throughput,
ratelimit, scale, profile, pool, selection, e2e, status, reference, issue17; default all), BENCH_TP_N (20000),
BENCH_SCALE_N (1000000), BENCH_RATE_S (70, seconds of each rate-limit run),
BENCH_POOL_N (8000 items per pool run), BENCH_SEL_N (100000), BENCH_E2E_N (two
sizes), BENCH_E2E_AIO (0: no aiohttp baseline in e2e; default 0 with issue17,
1 otherwise), BENCH_E2E_ROUNDS, BENCH_STATUS_N (60000), BENCH_STATUS_S (10),
BENCH_STATUS_CLIENTS (50), BENCH_KILL_LEFT (2000), BENCH_KEEP=1 keeps the
temporary directory. Standard library only (python3 of Debian).

Every section records the load average at its start and end and the CPU that
processes other than this run's used meanwhile (/proc/stat minus our own
processes); a section where others used more than 0.2 cores is flagged loaded.

`bench.py --report-only` re-renders docs/PERFORMANCE.md from
build/bench/results.json; `bench.py --self-check` runs the report code on
made-up results (no daemon), for the tests.
"""
import glob
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BIN = os.path.join(TOP, os.environ.get("BIN", "bin"))
BUILD = os.path.join(TOP, os.environ.get("B", "build"))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
ONLY = [x for x in os.environ.get("BENCH_ONLY", "").split(",") if x]
TP_N = int(os.environ.get("BENCH_TP_N", "20000"))
E2E_N = [int(x) for x in os.environ.get("BENCH_E2E_N", "20000,200000").split(",") if x.strip()]
E2E_AIO = os.environ.get("BENCH_E2E_AIO", "0" if "issue17" in ONLY else "1") != "0"
E2E_AIO_REF = os.environ.get("BENCH_REF_AIO", "1") != "0"
E2E_ROUNDS = max(1, int(os.environ.get("BENCH_E2E_ROUNDS", "3")))
STATUS_N = int(os.environ.get("BENCH_STATUS_N", "60000"))
STATUS_S = float(os.environ.get("BENCH_STATUS_S", "10"))
STATUS_CLIENTS = int(os.environ.get("BENCH_STATUS_CLIENTS", "50"))
KILL_LEFT = int(os.environ.get("BENCH_KILL_LEFT", "2000"))
REF_N = [int(x) for x in os.environ.get("BENCH_REF_N", "20000,200000").split(",") if x.strip()]
REF_ROUNDS = max(1, int(os.environ.get("BENCH_REF_ROUNDS", "2")))
# "debian": the reference script's poll runs Debian's python3 when the PATH's
# is another (a shim); "path": as the PATH has it (bench_reference).
REF_PY = os.environ.get("BENCH_REF_PY", "debian")
if REF_PY not in ("debian", "path"):
    sys.exit("bench: BENCH_REF_PY must be debian or path, not %r" % REF_PY)
REF_SCRIPT = os.path.join(TOP, "..", "shared", "bench", "compare.sh")
REF_LOOP_SRC = os.path.join(TOP, "..", "shared", "bench", "curlmulti.c")
RUN_ID = "%s-%d" % (time.strftime("%Y%m%dT%H%M%S", time.gmtime()), os.getpid())
LOADED_CORES = 0.2   # other processes' CPU above which a section is flagged loaded
SCALE_N = int(os.environ.get("BENCH_SCALE_N", "1000000"))
RATE_S = int(os.environ.get("BENCH_RATE_S", "65"))
EXPORT_S = float(os.environ.get("BENCH_EXPORT_S", "12"))     # cap on each export's read
JOB_CAP_S = float(os.environ.get("BENCH_JOB_CAP_S", "450"))  # the 1M job is killed by then
RESUME_S = float(os.environ.get("BENCH_RESUME_S", "75"))     # then paused if not done by then
CONC = 512
POOL_N = int(os.environ.get("BENCH_POOL_N", "8000"))
POOL_CONC = 16       # max_concurrency of the pool: in flight per replica
POOL_LATENCY_MS = 50
POOL_SIZES = (1, 2, 4)
LATENCY_MS = 100
SIM_RPM = 6000
TICK = os.sysconf("SC_CLK_TCK")

T = tempfile.mkdtemp(prefix="mtb.", dir="/tmp")
PROCS = []          # every process this run started: (Popen, name)
RESULTS = {}
NOTES = []          # oddities seen during the run, listed in the report
T_START = time.monotonic()


def log(msg):
    sys.stderr.write("[bench %6.1fs] %s\n" % (time.monotonic() - T_START, msg))
    sys.stderr.flush()


def want(name):
    if not ONLY or name in ONLY:
        return True
    return "issue17" in ONLY and name in ("e2e", "status", "scale", "reference")


# ---- load of the machine, per section ----

def cpu_stat():
    """(busy, steal) seconds of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    v += [0] * (8 - len(v))
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    return (user + nice + system + irq + softirq) / TICK, steal / TICK


def own_cpu():
    """CPU seconds of this run: this process, its reaped children and the
    children still running."""
    t = os.times()
    s = t.user + t.system + t.children_user + t.children_system
    for p, _ in PROCS:
        if p.returncode is None:
            try:
                s += proc_cpu(p.pid)
            except (OSError, ValueError, IndexError):
                pass
    return s


def sect_begin(name):
    busy, steal = cpu_stat()
    la = os.getloadavg()
    log("%s: load average %.2f %.2f %.2f at start" % ((name,) + la))
    return {"name": name, "t": time.monotonic(), "load": la, "busy": busy, "steal": steal,
            "own": own_cpu()}


def sect_end(s):
    busy, steal = cpu_stat()
    wall = max(1e-3, time.monotonic() - s["t"])
    foreign = max(0.0, (busy - s["busy"]) - (own_cpu() - s["own"])) / wall
    out = {"load_start": [round(x, 2) for x in s["load"]],
           "load_end": [round(x, 2) for x in os.getloadavg()],
           "wall_s": round(wall, 1), "other_cores": round(foreign, 2),
           "steal_cores": round((steal - s["steal"]) / wall, 2)}
    out["loaded"] = out["other_cores"] > LOADED_CORES or out["steal_cores"] > LOADED_CORES
    log("%s: load average %s at end; other processes %.2f cores, steal %.2f cores over %.0f s%s"
        % (s["name"], " ".join("%.2f" % x for x in out["load_end"]), out["other_cores"],
           out["steal_cores"], wall, " (LOADED)" if out["loaded"] else ""))
    return out


def load_line(ld):
    """One sentence on a section's load, for the report."""
    if not ld:
        return ""
    return ("Load average (1/5/15 min) %s at the start, %s at the end; other processes used %.2f "
            "cores on average (steal %.2f) over %.0f s: %s."
            % (" ".join("%.2f" % x for x in ld["load_start"]), " ".join("%.2f" % x for x in ld["load_end"]),
               ld["other_cores"], ld.get("steal_cores", 0), ld["wall_s"],
               "**LOADED machine, numbers not representative**" if ld.get("loaded") else "quiet"))


def cleanup():
    for p, _ in PROCS:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except OSError:
                pass
    for p, _ in PROCS:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if os.environ.get("BENCH_KEEP"):
        log("kept %s" % T)
    else:
        shutil.rmtree(T, ignore_errors=True)


def on_signal(sig, frame):
    raise SystemExit(128 + sig)


def spawn(argv, name, **kw):
    p = subprocess.Popen(argv, **kw)
    PROCS.append((p, name))
    return p


# ---- /proc ----

def proc_cpu(pid):
    """user+sys seconds of a process (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_cpu(pid):
    """{tid: (comm, user+sys seconds)} for every thread of a process."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            st = open("/proc/%d/task/%s/stat" % (pid, tid)).read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        f = st[st.rindex(")") + 2:].split()
        out[int(tid)] = ("%s[%s]" % (comm, tid), (int(f[11]) + int(f[12])) / TICK)
    return out


def proc_mem(pid):
    """(VmRSS, VmHWM) in KiB."""
    rss = hwm = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


# ---- HTTP ----

class UnixConn(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def http_json(conn, method, path, body=None, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    try:
        obj = json.loads(data) if data else None
    except ValueError:
        obj = {"raw": data[:300].decode("utf-8", "replace")}
    return r.status, obj


class Sim:
    def __init__(self, name, *flags):
        self.name = name
        out = os.path.join(T, "sim-%s.out" % name)
        self.p = spawn([os.path.join(BIN, "medthink-sim"), "--listen", "127.0.0.1:0",
                        "--contradict-rate", "0", "--log-level", "warn"] + list(flags), "sim-" + name,
                       stdout=open(out, "w"), stderr=open(os.path.join(T, "sim-%s.log" % name), "w"))
        deadline = time.monotonic() + 10
        self.port = None
        while time.monotonic() < deadline:
            m = re.search(r"listening on [0-9.]+:(\d+)", open(out).read())
            if m:
                self.port = int(m.group(1))
                break
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        if not self.port:
            raise RuntimeError("simulator %s did not start" % name)

    def req(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            return http_json(c, method, path, body)[1]
        finally:
            c.close()

    def stats(self):
        return self.req("GET", "/sim/stats")

    def reset(self):
        self.req("POST", "/sim/reset")

    def url(self):
        return "http://127.0.0.1:%d/v1" % self.port

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(timeout=10)


class Daemon:
    def __init__(self, name, teachers, student=None):
        """teachers: {NAME: (sim, {extra keys})}; student: keys of [student.local]
        (default: the first teacher's simulator)"""
        self.dir = os.path.join(T, name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "d.sock")
        self.conf = os.path.join(self.dir, "medthinkd.conf")
        self.log = os.path.join(self.dir, "medthinkd.log")
        self.db = os.path.join(self.dir, "var", "medthink.db")
        lines = ["[daemon]", "socket = " + self.sock, "state_dir = " + os.path.join(self.dir, "var"),
                 "log_level = info", "prompts_dir = " + os.path.join(TOP, "conf", "prompts"), ""]
        first = None
        for tname, (sim, extra) in teachers.items():
            first = first or sim
            keys = {"base_url": sim.url(), "model": "sim-teacher", "max_concurrency": CONC,
                    "timeout_s": 60, "max_retries": 6}
            keys.update(extra)
            lines.append("[teacher.%s]" % tname)
            lines += ["%s = %s" % kv for kv in keys.items()]
            lines.append("")
        skeys = student or {"base_url": first.url(), "model": "sim-student"}
        lines.append("[student.local]")
        lines += ["%s = %s" % kv for kv in skeys.items()]
        lines.append("")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines))
        self.p = None

    def start(self, wait=True, binary=None):
        """medthinkd (BIN's, or binary: another build) on this store."""
        env = dict(os.environ)
        env.pop("MEDTHINK_SOCKET", None)
        self.p = spawn([binary or os.path.join(BIN, "medthinkd"), "-c", self.conf], "medthinkd",
                       stderr=open(self.log, "a"), env=env)
        self.pid = self.p.pid
        if wait:
            self.wait_health()

    def wait_health(self, limit=20):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError("medthinkd exited: " + self.tail())
            try:
                c = UnixConn(self.sock, timeout=2)
                st, _ = http_json(c, "GET", "/v1/health")
                c.close()
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("medthinkd did not answer /v1/health: " + self.tail())

    def tail(self):
        try:
            return open(self.log).read()[-1500:]
        except OSError:
            return ""

    def api(self, method, path, body=None, timeout=120):
        c = UnixConn(self.sock, timeout=timeout)
        try:
            st, obj = http_json(c, method, path, body)
        finally:
            c.close()
        if st >= 300:
            raise RuntimeError("%s %s: %s %s" % (method, path, st, obj))
        return obj

    def import_file(self, path, name):
        """Streams a native JSONL file as the body; returns (object, seconds)."""
        size = os.path.getsize(path)
        c = UnixConn(self.sock, timeout=600)
        t0 = time.monotonic()
        with open(path, "rb") as f:
            c.request("POST", "/v1/datasets?name=%s&format=native" % name, body=f,
                      headers={"Content-Length": str(size), "Content-Type": "application/x-ndjson"})
            r = c.getresponse()
            data = r.read()
        dt = time.monotonic() - t0
        c.close()
        if r.status != 201:
            raise RuntimeError("import %s: %s %s" % (name, r.status, data[:300]))
        return json.loads(data), dt

    def submit(self, dataset, teacher, name="bench"):
        spec = {"name": name, "dataset": dataset, "kind": "stage1", "teacher": teacher,
                "selection": {"strategy": "none"}, "eval_fraction": 0}
        return self.api("POST", "/v1/jobs", spec)["id"]

    def status(self, job):
        return self.api("GET", "/v1/jobs/" + job)

    def wait_done(self, job, poll=0.05, limit=3600):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            s = self.status(job)
            if s.get("state") in ("done", "failed", "cancelled"):
                return time.monotonic(), s
            if self.p.poll() is not None:
                raise RuntimeError("medthinkd exited during %s: %s" % (job, self.tail()))
            time.sleep(poll)
        raise RuntimeError("%s did not finish in %ds" % (job, limit))

    def stop(self):
        if self.p and self.p.poll() is None:
            t0 = time.monotonic()
            self.p.terminate()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                NOTES.append("medthinkd (%s) did not exit within 10 s of SIGTERM; killed"
                             % os.path.basename(self.dir))
                log("  " + NOTES[-1])
            else:
                log("  medthinkd stopped %.2f s after SIGTERM" % (time.monotonic() - t0))

    def cpu(self):
        return proc_cpu(self.pid)


def job_num(job):
    return int(str(job).split("_")[-1])


def counts(status, step="explain"):
    c = (status.get("counts") or {}).get(step) or {}
    return c


def in_flight(status):
    return sum(int(v.get("in_flight", 0)) for v in (status.get("counts") or {}).values())


def finished(status, step="explain"):
    c = counts(status, step)
    return int(c.get("done", 0)) + int(c.get("failed", 0)) + int(c.get("dropped", 0))


def gen_items(n, path, prefix, *extra):
    subprocess.check_call([PY, os.path.join(TOP, "bench", "gen_items.py"), str(n), path,
                           "--prefix", prefix] + list(extra))


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


# ---- 1. throughput ----

def run_daemon_job(d, sim, items, name):
    ds, _ = d.import_file(items, name)
    sim.reset()
    c0 = d.cpu()
    t0 = time.monotonic()
    job = d.submit(ds["id"], "sim", name)
    t1, st = d.wait_done(job, poll=0.02)
    cpu = d.cpu() - c0
    wall = t1 - t0
    ss = sim.stats()
    n = finished(st)
    return job, {"calls": ss["requests_total"], "items": n, "state": st.get("state"),
                 "failed": int(counts(st).get("failed", 0)), "wall_s": round(wall, 3),
                 "cpu_s": round(cpu, 3), "calls_per_s": round(ss["requests_total"] / wall, 1),
                 "cpu_s_per_1k": round(cpu * 1000 / max(1, ss["requests_total"]), 4),
                 "sim_429": ss.get("sent_429", 0)}


def capture_bodies(d, job, path):
    db = sqlite3.connect(d.db, timeout=30)
    n = 0
    with open(path, "w") as f:
        for (req,) in db.execute("SELECT request FROM calls WHERE job_id = ? ORDER BY id",
                                 (job_num(job),)):
            if "\n" in req:
                req = json.dumps(json.loads(req), separators=(",", ":"), ensure_ascii=False)
            f.write(req + "\n")
            n += 1
    db.close()
    return n


def bench_throughput():
    log("1. throughput: %d items, latency %d ms, %d in flight" % (TP_N, LATENCY_MS, CONC))
    sim = Sim("tp", "--latency-ms", str(LATENCY_MS))
    d = Daemon("tp", {"sim": (sim, {})})
    d.start()
    res = {"n": TP_N, "rounds": []}
    url = sim.url() + "/chat/completions"
    bodies = os.path.join(T, "tp-bodies.jsonl")
    for rnd in (1, 2):
        items = os.path.join(T, "tp%d.jsonl" % rnd)
        gen_items(TP_N, items, "tp%d-" % rnd)
        job, a = run_daemon_job(d, sim, items, "tp%d" % rnd)
        log("  (a) medthinkd round %d: %s" % (rnd, a))
        if rnd == 1:
            res["bodies"] = "captured from the daemon's calls table"
            nb = capture_bodies(d, job, bodies)
            if nb != TP_N:
                log("  captured %d bodies (want %d): using generated ones" % (nb, TP_N))
                gen_items(TP_N, os.path.join(T, "tpx.jsonl"), "tp1-", "--bodies", bodies)
                res["bodies"] = "generated by bench/gen_items.py --bodies (capture failed)"
            res["body_bytes_avg"] = round(os.path.getsize(bodies) / TP_N)
        sim.reset()
        out = subprocess.run([os.path.join(BUILD, "bench", "curl_multi"), "--url", url,
                              "--bodies", bodies, "--concurrency", str(CONC)],
                             capture_output=True, text=True, timeout=600)
        b = json.loads(out.stdout)
        b["sim_requests"] = sim.stats()["requests_total"]
        log("  (b) curl-multi round %d: %s" % (rnd, b))
        res["rounds"].append({"a": a, "b": b})
    sim.reset()
    dbp = os.path.join(T, "aiohttp.db")
    out = subprocess.run([PY, os.path.join(TOP, "bench", "aiohttp_sqlite.py"), url, bodies, dbp,
                          str(CONC)], capture_output=True, text=True, timeout=900)
    if out.returncode != 0 and not out.stdout.strip():
        raise RuntimeError("aiohttp_sqlite.py: " + out.stderr[-800:])
    c = json.loads(out.stdout)
    c["sim_requests"] = sim.stats()["requests_total"]
    log("  (c) aiohttp+sqlite: %s" % c)
    res["c"] = c
    # Best of the two rounds for (a) and (b); ratios also per round.
    res["a"] = max((r["a"] for r in res["rounds"]), key=lambda x: x["calls_per_s"])
    res["b"] = max((r["b"] for r in res["rounds"]), key=lambda x: x["calls_per_s"])
    RESULTS["throughput"] = res
    if want("profile"):
        try:
            profile(d, sim)
        except Exception as e:  # the profile is a bonus: report, go on
            RESULTS["profile"] = {"error": str(e)}
            log("  profile failed: %s" % e)
    d.stop()
    sim.stop()


# ---- 5. student pool ----

def bench_pool():
    log("5. pool: %d items, student replicas %s, %d in flight per replica, latency %d ms"
        % (POOL_N, POOL_SIZES, POOL_CONC, POOL_LATENCY_MS))
    items = os.path.join(T, "pool.jsonl")
    gen_items(POOL_N, items, "pool-")
    res = {"n": POOL_N, "conc": POOL_CONC, "latency_ms": POOL_LATENCY_MS, "runs": []}
    for n in POOL_SIZES:
        sims = [Sim("pool%d-%d" % (n, i), "--latency-ms", str(POOL_LATENCY_MS), "--replica-id", "r%d" % i)
                for i in range(n)]
        # An eval job with no teacher: one student call per item, nothing else.
        d = Daemon("pool%d" % n, {"sim": (sims[0], {})},
                   student={"base_url": " ".join(s.url() for s in sims), "model": "sim-student",
                            "max_concurrency": POOL_CONC, "timeout_s": 60})
        try:
            d.start()
            ds, _ = d.import_file(items, "pool")
            for s in sims:
                s.reset()
            c0 = d.cpu()
            t0 = time.monotonic()
            job = d.api("POST", "/v1/jobs", {"name": "pool%d" % n, "dataset": ds["id"], "kind": "eval",
                                             "student": "local", "eval_fraction": 1, "seed": 1})["id"]
            t1, st = d.wait_done(job, poll=0.02)
            wall = t1 - t0
            cpu = d.cpu() - c0
            per = [int(s.stats()["by_path"].get("/v1/chat/completions", 0)) for s in sims]
            calls = sum(per)
            run = {"replicas": n, "calls": calls, "per_replica": per, "state": st.get("state"),
                   "wall_s": round(wall, 3), "calls_per_s": round(calls / wall, 1),
                   "ideal_per_s": n * POOL_CONC * 1000 // POOL_LATENCY_MS,
                   "cpu_s_per_1k": round(cpu * 1000 / max(1, calls), 4)}
            log("  %d replica(s): %s" % (n, run))
            res["runs"].append(run)
        finally:
            d.stop()
            for s in sims:
                s.stop()
    base = res["runs"][0]["calls_per_s"] if res["runs"] else 0
    for r in res["runs"]:
        r["ratio"] = round(r["calls_per_s"] / base, 2) if base else 0
    m = machine()
    res["run"] = "%s, commit %s" % (m["date"], m["commit"])
    RESULTS["pool"] = res


def pool_section(w):
    """The "5. Student pool" section of docs/PERFORMANCE.md."""
    pl = RESULTS.get("pool")
    w("## 5. Student pool")
    w("")
    if pl and pl.get("runs"):
        w("An eval job of %d items and no teacher (one student call per item) against a student whose "
          "`base_url` lists 1, 2 and 4 simulated replicas (`bin/medthink-sim --replica-id`, latency %d ms "
          "each), `max_concurrency = %d` (in flight per replica), each run in a fresh daemon. Ideal: "
          "replicas x %d x 1000 / %d calls/s. The ratio is calls/s over the one-replica run's.%s"
          % (pl["n"], pl["latency_ms"], pl["conc"], pl["conc"], pl["latency_ms"],
             " Run: %s." % pl["run"] if pl.get("run") else ""))
        w("")
        w("| replicas | calls/s | ratio to 1 | ideal calls/s | % of ideal | calls per replica | CPU s / 1,000 calls | job |")
        w("|---:|---:|---:|---:|---:|---|---:|---|")
        for r in pl["runs"]:
            w("| %d | %.1f | %.2f | %d | %.0f%% | %s | %.3f | %s |"
              % (r["replicas"], r["calls_per_s"], r.get("ratio", 0), r["ideal_per_s"],
                 100.0 * r["calls_per_s"] / max(1, r["ideal_per_s"]),
                 " / ".join(str(x) for x in r["per_replica"]), r["cpu_s_per_1k"], r["state"]))
        w("")
        w("Calls per replica show the least-outstanding pick spreading the load; the wall time runs "
          "from submit to the job's end, so the job's start and its last, partly filled round count "
          "against every run alike.")
    else:
        w("Not run.")
    w("")


def splice_section(path, title, body_lines):
    """Replaces the section `## title` (up to the next `## `) of an existing
    report with body_lines, or inserts it before the Profile section: a
    BENCH_ONLY=pool run updates its own numbers and leaves the others as
    they were."""
    text = open(path).read().split("\n")
    start = next((i for i, l in enumerate(text) if l == "## " + title), None)
    if start is None:
        start = next((i for i, l in enumerate(text) if l == "## Profile"), len(text))
        end = start
    else:
        end = next((i for i in range(start + 1, len(text)) if text[i].startswith("## ")), len(text))
    text[start:end] = body_lines
    with open(path, "w") as f:
        f.write("\n".join(text))


def profile(d, sim):
    perf = shutil.which("perf")
    items = os.path.join(T, "prof.jsonl")
    gen_items(TP_N, items, "prof-")
    ds, _ = d.import_file(items, "prof")
    sim.reset()
    data = os.path.join(T, "perf.data")
    if not perf:
        RESULTS["profile"] = {"error": "perf not installed (apt-get install linux-perf)"}
        return
    log("  profiling medthinkd with perf record during a %d-item job" % TP_N)
    pr = spawn([perf, "record", "-F", "499", "--call-graph", "dwarf,16384", "-p", str(d.pid),
                "-o", data],
               "perf", stdout=subprocess.DEVNULL, stderr=open(os.path.join(T, "perf.log"), "w"))
    time.sleep(0.5)
    threads0 = thread_cpu(d.pid)
    t0 = time.monotonic()
    job = d.submit(ds["id"], "sim", "prof")
    # Off-CPU view of the event-loop thread: sample its state and wchan
    # (where it sleeps in the kernel) every 2 ms until the job ends.
    states = {}
    stop = threading.Event()

    def sampler():
        path = "/proc/%d/task/%d/" % (d.pid, d.pid)
        while not stop.is_set():
            try:
                st = open(path + "stat").read()
                state = st[st.rindex(")") + 2]
                wchan = open(path + "wchan").read().strip() or "-"
            except OSError:
                break
            key = "running" if state == "R" else "%s %s" % (state, wchan)
            states[key] = states.get(key, 0) + 1
            time.sleep(0.002)
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    d.wait_done(job, poll=0.05)
    wall = time.monotonic() - t0
    stop.set()
    th.join()
    threads1 = thread_cpu(d.pid)
    pr.send_signal(signal.SIGINT)
    pr.wait(timeout=60)
    rep = subprocess.run([perf, "report", "-i", data, "--stdio", "--no-children",
                          "--sort", "dso,symbol", "--percent-limit", "0.7", "-g", "none"],
                         capture_output=True, text=True, timeout=300)
    selfrows, unresolved = [], {}
    for line in rep.stdout.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(.+?)(\s+-)*\s*$", line)
        if not m:
            continue
        if m.group(3).startswith("0x"):
            unresolved[m.group(2)] = unresolved.get(m.group(2), 0) + float(m.group(1))
        else:
            selfrows.append((float(m.group(1)), m.group(2), m.group(3)))
    for dso, v in unresolved.items():
        selfrows.append((round(v, 2), dso, "(no symbols: %s rows of >= 0.7%% summed)" % dso))
    selfrows.sort(key=lambda x: -x[0])
    rep2 = subprocess.run([perf, "report", "-i", data, "--stdio", "--children",
                           "--sort", "symbol", "--percent-limit", "2", "-g", "none",
                           "--dsos", "medthinkd"],
                          capture_output=True, text=True, timeout=300)
    childrows = []
    for line in rep2.stdout.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+([0-9.]+)%\s+\[[.k]\]\s+(.+?)(\s+-)*\s*$", line)
        if m and not m.group(3).startswith("0x"):
            childrows.append((float(m.group(1)), float(m.group(2)), m.group(3)))
    total = sum(states.values()) or 1
    RESULTS["profile"] = {"self": selfrows[:20], "children": childrows[:25], "calls": TP_N,
                          "wall_s": round(wall, 2),
                          "loop_states": sorted(((k, round(v * 100.0 / total, 1))
                                                 for k, v in states.items()), key=lambda x: -x[1])[:8],
                          "threads": sorted(((name, round(threads1.get(tid, (name, 0))[1] - c0, 2))
                                             for tid, (name, c0) in threads0.items()),
                                            key=lambda x: -x[1])}


# ---- 2. rate limits ----

def loop_cpu(pid):
    """user+sys seconds of the event-loop thread (the main thread, TID == PID)."""
    with open("/proc/%d/task/%d/stat" % (pid, pid)) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def reset_hwm(pid):
    """Resets VmHWM (peak RSS) of a process to its current RSS (clear_refs 5);
    False if the kernel refused."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def e2e_daemon(d, sim, n, tag):
    """One stage-one job of n items, submit to done: wall, CPU (whole process
    and loop thread), first call, peak RSS."""
    items = os.path.join(T, "e2e%s.jsonl" % tag)
    gen_items(n, items, "e2e%s-" % tag)
    ds, _ = d.import_file(items, "e2e%s" % tag)
    os.remove(items)
    sim.reset()
    rss = proc_mem(d.pid)[0]
    c0, l0 = d.cpu(), loop_cpu(d.pid)
    t0 = time.monotonic()
    job = d.submit(ds["id"], "sim", "e2e%s" % tag)
    first = None
    while first is None and time.monotonic() - t0 < 30:
        if sim.stats()["requests_total"] > 0:
            first = time.monotonic() - t0
        else:
            time.sleep(0.002)
    last = 0.0
    while True:
        now = time.monotonic()
        if now - last > 0.25:
            rss = max(rss, proc_mem(d.pid)[0])
            last = now
        st = d.status(job)
        if st.get("state") in ("done", "failed", "cancelled", "paused"):
            break
        if now - t0 > 3600:
            raise RuntimeError("e2e job of %d items did not finish in an hour" % n)
        time.sleep(0.02)
    wall = time.monotonic() - t0
    cpu = d.cpu() - c0
    lcpu = loop_cpu(d.pid) - l0
    calls = sim.stats()["requests_total"]
    return job, {"items": n, "state": st.get("state"), "failed": int(counts(st).get("failed", 0)),
                 "wall_s": round(wall, 3), "calls": calls, "calls_per_s": round(calls / wall, 1),
                 "items_per_s": round(n / wall, 1), "cpu_s": round(cpu, 3),
                 "loop_cpu_s": round(lcpu, 3),
                 "cpu_ms_per_call": round(cpu * 1000 / max(1, calls), 4),
                 "loop_cpu_ms_per_call": round(lcpu * 1000 / max(1, calls), 4),
                 "first_call_s": round(first, 4) if first is not None else None,
                 "max_rss_kib": rss}


def e2e_bare(url, bodies, nb):
    """The bare curl-multi loop on the captured bodies, process start to exit."""
    t0 = time.monotonic()
    out = subprocess.run([os.path.join(BUILD, "bench", "curl_multi"), "--url", url,
                          "--bodies", bodies, "--concurrency", str(CONC)],
                         capture_output=True, text=True, timeout=3600)
    bw = time.monotonic() - t0
    if not out.stdout.strip():
        raise RuntimeError("curl_multi: " + out.stderr[-400:])
    b = json.loads(out.stdout)
    # The same clock as (a): process start to exit (reading the bodies included).
    b["calls_per_s_inner"] = b.get("calls_per_s")
    b.update({"items": nb, "wall_s": round(bw, 3), "items_per_s": round(nb / bw, 1),
              "calls_per_s": round(b["calls"] / bw, 1)})
    b["cpu_ms_per_call"] = round(b["cpu_s"] * 1000 / max(1, nb), 4)
    if "cpu_s_main" in b:
        b["loop_cpu_ms_per_call"] = round(b["cpu_s_main"] * 1000 / max(1, nb), 4)
    return b


def ref_loop_build():
    """The issue's own bare loop (../shared/bench/curlmulti.c, unchanged),
    built as compare.sh builds it; None when the source is missing."""
    exe = os.path.join(T, "curlmulti")
    if os.path.exists(exe):
        return exe
    if not os.path.exists(REF_LOOP_SRC):
        return None
    out = subprocess.run(["gcc", "-O2", "-o", exe, REF_LOOP_SRC, "-lcurl", "-luv", "-ljansson"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("building %s: %s" % (REF_LOOP_SRC, out.stderr[-400:]))
    return exe


def e2e_ref(exe, url, nb):
    """The issue's bare loop: nb posts of its own fixed body (one easy handle
    each, every reply parsed with jansson), 512 in flight, to the same
    simulator; wall from process start to exit, CPU from wait4's rusage."""
    t0 = time.monotonic()
    p = subprocess.Popen([exe, url, str(nb), str(CONC)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    PROCS.append((p, "curlmulti"))
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    out = p.stdout.read()
    got = ref_parse(out).get("curlmulti")
    if p.returncode != 0 or not got:
        raise RuntimeError("curlmulti: exit %d: %s" % (p.returncode, (out + p.stderr.read())[-400:]))
    cpu = ru.ru_utime + ru.ru_stime
    calls = int(got["calls"])
    return {"items": nb, "calls": calls, "failed": int(got["failed"]), "wall_s": round(wall, 3),
            "calls_per_s": round(calls / wall, 1), "calls_per_s_inner": got["rate"],
            "cpu_s": round(cpu, 3), "cpu_ms_per_call": round(cpu * 1000 / max(1, calls), 4)}


def fmt3(x):
    return "-" if x is None else "%.3f" % x


def median(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def fixed_marginal(rows):
    """(fixed seconds, marginal items/s) from the first and last size."""
    if len(rows) < 2 or rows[-1]["items"] == rows[0]["items"]:
        return None, None
    a, b = rows[0], rows[-1]
    dw = b["wall_s"] - a["wall_s"]
    if dw <= 0:
        return None, None
    rate = (b["items"] - a["items"]) / dw
    return round(a["wall_s"] - a["items"] / rate, 3), round(rate, 1)


def bench_e2e():
    log("7. end to end: sizes %s, %d round(s) each, latency %d ms, %d in flight"
        % (E2E_N, E2E_ROUNDS, LATENCY_MS, CONC))
    res = {"sizes": [], "load_before": os.getloadavg(), "rounds": E2E_ROUNDS, "run_id": RUN_ID}
    sim = Sim("e2e", "--latency-ms", str(LATENCY_MS))
    d = Daemon("e2e", {"sim": (sim, {})})
    d.start()
    url = sim.url() + "/chat/completions"
    ref_exe = ref_loop_build()
    if not ref_exe:
        NOTES.append("section 7 ran without the issue's bare loop: %s is missing" % REF_LOOP_SRC)
    try:
        for n in E2E_N:
            bodies = os.path.join(T, "e2e-bodies.jsonl")
            nb = None
            rounds = []
            for r in range(E2E_ROUNDS):
                # a b, b a, a b, ...: drift of the machine falls on both alike.
                rr = {}
                order = ("a", "b", "r") if r % 2 == 0 else ("r", "b", "a")
                for k in order:
                    if k == "r":
                        if not ref_exe:
                            continue
                        # nb is known: (a) ran first in round 1. (r) sends
                        # as many calls as the daemon did.
                        sim.reset()
                        x = e2e_ref(ref_exe, url, nb)
                        log("  (r) the issue's curlmulti %d calls, round %d: %s" % (nb, r + 1, x))
                        rr["r"] = x
                    elif k == "a":
                        job, a = e2e_daemon(d, sim, n, "%dr%d" % (n, r))
                        log("  (a) medthinkd %d items, round %d: %s" % (n, r + 1, a))
                        rr["a"] = a
                        if nb is None:
                            nb = capture_bodies(d, job, bodies)
                    else:
                        sim.reset()
                        b = e2e_bare(url, bodies, nb)
                        log("  (b) curl-multi %d bodies, round %d: %s" % (nb, r + 1, b))
                        rr["b"] = b
                if "r" in rr:
                    x = rr["r"]
                    rr["ratio_r"] = round(rr["a"]["calls_per_s"] / x["calls_per_s"], 4) if x["calls_per_s"] else None
                    rr["cpu_ratio_r"] = (round(rr["a"]["cpu_ms_per_call"] / x["cpu_ms_per_call"], 3)
                                         if x["cpu_ms_per_call"] else None)
                a, b = rr["a"], rr["b"]
                # The bare loop sends the daemon's calls (its re-asks included):
                # the same work, so the ratio is of calls/s (= wall b / wall a).
                rr["ratio"] = round(a["calls_per_s"] / b["calls_per_s"], 4) if b["calls_per_s"] else None
                rr["cpu_ratio"] = (round(a["cpu_ms_per_call"] / b["cpu_ms_per_call"], 3)
                                   if b["cpu_ms_per_call"] else None)
                rr["loop_cpu_ratio"] = (round(a["loop_cpu_ms_per_call"] / b["loop_cpu_ms_per_call"], 3)
                                        if b.get("loop_cpu_ms_per_call") else None)
                rounds.append(rr)
            c = None
            if E2E_AIO:
                sim.reset()
                dbp = os.path.join(T, "e2e-aio.db")
                t0 = time.monotonic()
                out = subprocess.run([PY, os.path.join(TOP, "bench", "aiohttp_sqlite.py"), url, bodies,
                                      dbp, str(CONC)], capture_output=True, text=True, timeout=3600)
                cw = time.monotonic() - t0
                if out.stdout.strip():
                    c = json.loads(out.stdout)
                    c.update({"items": nb, "wall_s": round(cw, 3)})
                for f in (dbp, dbp + "-wal", dbp + "-shm"):
                    if os.path.exists(f):
                        os.remove(f)
                log("  (c) aiohttp+sqlite %d bodies: %s" % (nb, c))
            os.remove(bodies)
            # Median over the rounds (the round itself for one round).
            med = {}
            for k in ("a", "b"):
                med[k] = {f: median([rr[k].get(f) for rr in rounds])
                          for f in ("wall_s", "items_per_s", "calls_per_s", "cpu_ms_per_call", "loop_cpu_ms_per_call",
                                    "first_call_s", "max_rss_kib")}
                med[k]["items"] = rounds[0][k]["items"]
            if all("r" in rr for rr in rounds):
                med["r"] = {f: median([rr["r"].get(f) for rr in rounds])
                            for f in ("wall_s", "calls_per_s", "cpu_ms_per_call")}
            res["sizes"].append({"n": n, "rounds": rounds, "a": rounds[0]["a"], "b": rounds[0]["b"],
                                 "med": med, "c": c,
                                 "ratio_r": median([rr.get("ratio_r") for rr in rounds]),
                                 "cpu_ratio_r": median([rr.get("cpu_ratio_r") for rr in rounds]),
                                 "ratio": median([rr["ratio"] for rr in rounds]),
                                 "cpu_ratio": median([rr["cpu_ratio"] for rr in rounds]),
                                 "loop_cpu_ratio": median([rr["loop_cpu_ratio"] for rr in rounds])})
            log("  %d items: a/b median %.3f, CPU per call a/b median %s (loop thread %s); "
                "a/r %s, CPU a/r %s"
                % (n, res["sizes"][-1]["ratio"], res["sizes"][-1]["cpu_ratio"],
                   res["sizes"][-1]["loop_cpu_ratio"], fmt3(res["sizes"][-1]["ratio_r"]),
                   fmt3(res["sizes"][-1]["cpu_ratio_r"])))
    finally:
        d.stop()
        sim.stop()
    res["load_after"] = os.getloadavg()
    for k in ("a", "b"):
        rows = [s["med"][k] for s in res["sizes"]]
        res["fixed_" + k], res["marginal_" + k] = fixed_marginal(rows)
    rows = [s["c"] for s in res["sizes"] if s.get("c")]
    res["fixed_c"], res["marginal_c"] = fixed_marginal(rows) if len(rows) == len(res["sizes"]) else (None, None)
    RESULTS["e2e"] = res


# ---- 9. the issues' own reference comparison ----

REF_LINE = re.compile(r"^(curlmulti|aiohttp\+sqlite|medthinkd) (.*)$")


def ref_parse(text):
    """{runner: {key: value}} from compare.sh's output lines
    ("curlmulti calls=20000 ... rate=4853/s cpu=2.02s cpu_per_1k=0.101s ...")."""
    out = {}
    for line in text.splitlines():
        m = REF_LINE.match(line.strip())
        if not m or "skipped" in line:
            continue
        kv = {}
        for tok in m.group(2).split():
            if "=" in tok:
                k, v = tok.split("=", 1)
                num = re.match(r"^([0-9.]+)", v)
                kv[k] = float(num.group(1)) if num and k != "state" else v
        out[m.group(1)] = kv
    return out


def reap_orphans(timeout=10.0):
    """Waits for the processes compare.sh left to this run (we are their
    subreaper: nginx daemonizes, the daemon is killed by its trap), so their
    CPU counts as this run's and not as other processes' load."""
    mine = {p.pid for p, _ in PROCS}
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        kids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                ppid = int(st.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == os.getpid() and int(d) not in mine:
                kids.append(int(d))
        if not kids:
            return
        for k in kids:
            try:
                if os.waitpid(k, os.WNOHANG)[0] == 0:
                    os.kill(k, signal.SIGTERM)
            except (ChildProcessError, ProcessLookupError):
                pass
        time.sleep(0.1)


def decided(runs):
    """The reference script's runs its medians are of: all but the one
    kept with the PATH's (slow) python3 (bench_reference)."""
    return [r for r in runs if not r.get("as_found")]


def py_start_s(py, n=3):
    """Mean wall seconds for `py` to start and import json (what
    compare.sh's poll does every 0.2 s)."""
    t0 = time.monotonic()
    for _ in range(n):
        subprocess.run([py, "-c", "import json, sys"], check=False)
    return round((time.monotonic() - t0) / n, 3)


def bench_reference():
    """The issue's own script, unchanged: ../shared/bench/compare.sh (nginx
    with the echo module as the 100 ms teacher; its bare loop curlmulti.c
    makes an easy handle per call and parses each reply with jansson, as the
    issue defines the baseline; medthinkd timed from `medthink submit` to a
    poll every 0.2 s that sees the job done). REF_ROUNDS runs per size; the
    aiohttp script only in the first run of the first size."""
    if not os.path.exists(REF_SCRIPT):
        raise RuntimeError("%s is missing (../shared beside the checkout)" % REF_SCRIPT)
    if not shutil.which("nginx") or not os.path.exists("/usr/lib/nginx/modules/ngx_http_echo_module.so"):
        raise RuntimeError("nginx with the echo module is not installed (tests/deps.sh --bench installs "
                           "nginx-light and libnginx-mod-http-echo)")
    log("9. the issues' reference script %s: sizes %s, %d run(s) each" % (REF_SCRIPT, REF_N, REF_ROUNDS))
    try:  # PR_SET_CHILD_SUBREAPER: orphans of the script become ours (reap_orphans)
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    res = {"sizes": [], "run_id": RUN_ID, "script": "../shared/bench/compare.sh"}
    # Its poll starts a python3 every 0.2 s. Where python3 on PATH is a
    # version manager's shim (pyenv: a bash script that execs pyenv, ~0.4 s
    # and as much CPU per start here), the poll takes most of a core from
    # the two the daemon and nginx share and sees `done` up to ~0.6 s late:
    # the script then times its poll, not the daemon. So the runs that
    # decide the target put Debian's python3 first on PATH for the script
    # (a folder holding only that link; the script itself unchanged), and
    # one run at the first size keeps the PATH's python3, shown beside them.
    path_py = shutil.which("python3")
    deb_py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else None
    res["python3_path"] = path_py
    res["python3_start_s"] = py_start_s("python3")
    pydir = None
    if REF_PY == "debian" and deb_py and path_py and os.path.realpath(path_py) != os.path.realpath(deb_py):
        pydir = os.path.join(T, "refpy")
        os.makedirs(pydir, exist_ok=True)
        link = os.path.join(pydir, "python3")
        if not os.path.lexists(link):
            os.symlink(deb_py, link)
        res["poll_python3"] = deb_py
        res["poll_python3_start_s"] = py_start_s(deb_py)
        log("  the script's poll uses %s (%.3f s to start) instead of the PATH's %s (%.3f s)"
            % (deb_py, res["poll_python3_start_s"], path_py, res["python3_start_s"]))
    else:
        res["poll_python3"] = path_py
        res["poll_python3_start_s"] = res["python3_start_s"]
    for i, n in enumerate(REF_N):
        runs = []
        plan = [(r, pydir) for r in range(REF_ROUNDS)]
        if pydir and i == 0:
            plan.append((REF_ROUNDS, None))  # as the PATH has it, for the record
        for r, pyd in plan:
            env = dict(os.environ)
            env.pop("MEDTHINK_SOCKET", None)
            env["SKIP_AIO"] = "0" if (i == 0 and r == 0 and E2E_AIO_REF) else "1"
            if pyd:
                env["PATH"] = pyd + os.pathsep + env.get("PATH", "")
            before = set(glob.glob("/tmp/perfcmp.*"))
            out = subprocess.run(["bash", REF_SCRIPT, TOP, str(n), str(CONC)], capture_output=True,
                                 text=True, timeout=3600, env=env, cwd=T)
            reap_orphans()
            job_s = None
            for wd in set(glob.glob("/tmp/perfcmp.*")) - before:
                # The script leaves its folder (a store of n items): read the
                # job's own span from it, then remove it.
                try:
                    con = sqlite3.connect("file:%s/var/medthink.db?mode=ro" % wd, uri=True)
                    row = con.execute("SELECT updated_at - created_at FROM jobs WHERE state = 'done' "
                                      "ORDER BY id DESC LIMIT 1").fetchone()
                    con.close()
                    job_s = row[0] if row else None
                except sqlite3.Error:
                    pass
                shutil.rmtree(wd, ignore_errors=True)
            got = ref_parse(out.stdout)
            if out.returncode != 0 or "medthinkd" not in got or "curlmulti" not in got:
                raise RuntimeError("compare.sh %d failed (exit %d): %s" % (n, out.returncode,
                                                                          (out.stdout + out.stderr)[-600:]))
            a, b = got["medthinkd"], got["curlmulti"]
            if job_s:
                a["job_s"] = round(job_s, 3)
            run = {"medthinkd": a, "curlmulti": b, "aiohttp": got.get("aiohttp+sqlite"),
                   "ratio": round(a["rate"] / b["rate"], 4),
                   "cpu_ratio": round(a["cpu_per_1k"] / b["cpu_per_1k"], 3),
                   "poll_python3": res["poll_python3"] if pyd else path_py,
                   "as_found": bool(pydir) and not pyd}
            log("  %d items, run %d: medthinkd %.0f calls/s %.3f s CPU/1k, curlmulti %.0f calls/s %.3f s CPU/1k: "
                "ratio %.3f, CPU %.2f x" % (n, r + 1, a["rate"], a["cpu_per_1k"], b["rate"], b["cpu_per_1k"],
                                            run["ratio"], run["cpu_ratio"]))
            runs.append(run)
        res["sizes"].append({"n": n, "runs": runs, "ratio": median([x["ratio"] for x in decided(runs)]),
                             "cpu_ratio": median([x["cpu_ratio"] for x in decided(runs)])})
    RESULTS["reference"] = res


def reference_report(w):
    ref = RESULTS.get("reference")
    w("## 9. The issues' reference script")
    w("")
    if not ref:
        w("Not run (`BENCH_ONLY=reference make bench`; needs ../shared/bench and nginx with the echo module).")
        w("")
        return
    w("`%s` run unchanged, %d run(s) per size: nginx (echo module) answers every request after "
      "100 ms with one canned explanation; 512 in flight. Its bare loop (curlmulti.c) makes an easy "
      "handle per call and parses every reply with jansson; its CPU is the whole process "
      "(getrusage). medthinkd runs a stage-one job (one explain call per item, every call stored), "
      "timed from `medthink submit` to a status poll (every 0.2 s, each a new curl and python3) that "
      "sees it done; its CPU is /proc/PID/stat, all threads, over the same span. Ratios are of "
      "calls/s and of CPU per call." % (ref["script"], len(decided(ref["sizes"][0]["runs"])) if ref["sizes"] else 0))
    w("")
    w("| items | run | poll's python3 | medthinkd calls/s | curlmulti calls/s | ratio | medthinkd's own job span | "
      "medthinkd CPU ms/call | curlmulti CPU ms/call | CPU ratio | medthinkd peak RSS |")
    w("|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for s_ in ref["sizes"]:
        for k, x in enumerate(s_["runs"]):
            a, b = x["medthinkd"], x["curlmulti"]
            span = "-"
            if a.get("job_s"):
                span = "%.2f s of the script's %.2f s (%.3f x curlmulti's %.2f s)" % (
                    a["job_s"], a["wall"], b["wall"] / a["job_s"], b["wall"])
            py = "`%s`%s" % (x["poll_python3"], " (the PATH's; not in the median)" if x.get("as_found") else "") \
                if x.get("poll_python3") else "-"
            w("| %s | %d | %s | %.0f | %.0f | %.3f | %s | %.4f | %.4f | %.2f | %s |"
              % ("{:,}".format(s_["n"]), k + 1, py, a["rate"], b["rate"], x["ratio"], span, a["cpu_per_1k"],
                 b["cpu_per_1k"], x["cpu_ratio"], fmt_kib(a.get("maxrss", 0))))
    if ref.get("python3_start_s"):
        w("")
        w("The job's own span is created -> done in its store (jobs.created_at, updated_at). The rest of "
          "the script's time is its submit and its poll: a curl and a python3 every 0.2 s. The PATH's "
          "python3 (`%s`) takes %.3f s to start on this machine (measured in this run)."
          % (ref.get("python3_path") or "python3", ref["python3_start_s"]))
        if ref.get("poll_python3") and ref.get("poll_python3") != ref.get("python3_path"):
            w("")
            w("That is a version manager's shim, and at that cost the poll takes most of a core from the two "
              "the daemon and nginx share and sees the job done up to %.1f s late, so the script would time "
              "its own poll. The runs that decide the target ran the script unchanged with `%s` (%.3f s to "
              "start) first on its PATH (a folder holding only that link); one run at the first size kept "
              "the PATH's python3 for comparison and is left out of the median (BENCH_REF_PY=path runs "
              "every run that way)." % (0.2 + ref["python3_start_s"], ref["poll_python3"],
                                        ref["poll_python3_start_s"]))
    aio = [x["aiohttp"] for s_ in ref["sizes"] for x in s_["runs"] if x.get("aiohttp")]
    if aio:
        w("")
        w("The aiohttp + sqlite3 script (first run of the first size): %.0f calls/s, %.4f ms CPU per call."
          % (aio[0]["rate"], aio[0]["cpu_per_1k"]))
    w("")
    w(load_line(ref.get("load")))
    w("")


# ---- 8. status under load ----

JOB_END_RE = re.compile(rb'"state"\s*:\s*"(done|failed|cancelled|paused)"')


def py_status_poll(sock, job, clients, seconds):
    """Fallback for build/bench/status_poll: `clients` threads, each a
    keep-alive connection over the unix socket sending GET /v1/jobs/{id}
    back to back for `seconds` or until the job ends. Python's GIL and its
    own CPU add to the latencies: the C poller is the one to trust."""
    stop_at = time.monotonic() + seconds
    ended = threading.Event()
    lats, errs = [], [0]
    lock = threading.Lock()
    req = ("GET /v1/jobs/%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % job).encode()

    def worker():
        mine, bad = [], 0
        s, buf = None, b""
        while not ended.is_set() and time.monotonic() < stop_at:
            try:
                if s is None:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(30)
                    s.connect(sock)
                    buf = b""
                t0 = time.perf_counter()
                s.sendall(req)
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise OSError("connection closed")
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                need = int(m.group(1)) if m else 0
                while len(buf) < need:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise OSError("connection closed")
                    buf += chunk
                body, buf = buf[:need], buf[need:]
                dt = (time.perf_counter() - t0) * 1000
                if not head.startswith(b"HTTP/1.1 200"):
                    bad += 1
                else:
                    mine.append(dt)
                if JOB_END_RE.search(body):
                    ended.set()
                if re.search(rb"(?i)\r\nconnection:\s*close", head):
                    s.close()
                    s = None
            except (OSError, ValueError):
                bad += 1
                if s is not None:
                    s.close()
                s = None
        if s is not None:
            s.close()
        with lock:
            lats.extend(mine)
            errs[0] += bad

    ths = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(seconds + 60)
    return {"count": len(lats), "p50_ms": round(pct(lats, 50), 3), "p99_ms": round(pct(lats, 99), 3),
            "max_ms": round(max(lats), 3) if lats else None, "errors": errs[0]}


def bench_status():
    log("8. status under load: %d clients for %.0f s during a %d-item job, %d in flight"
        % (STATUS_CLIENTS, STATUS_S, STATUS_N, CONC))
    sim = Sim("st", "--latency-ms", str(LATENCY_MS))
    d = Daemon("st", {"sim": (sim, {})})
    d.start()
    res = {"n": STATUS_N, "clients": STATUS_CLIENTS, "seconds": STATUS_S, "run_id": RUN_ID}
    try:
        items = os.path.join(T, "status.jsonl")
        gen_items(STATUS_N, items, "st-")
        ds, _ = d.import_file(items, "status")
        os.remove(items)
        sim.reset()
        t0 = time.monotonic()
        job = d.submit(ds["id"], "sim", "status")
        st = {}
        while time.monotonic() - t0 < 60:
            st = d.status(job)
            if in_flight(st) >= CONC * 0.9 or st.get("state") in ("done", "failed", "cancelled"):
                break
            time.sleep(0.02)
        res["in_flight_start"] = in_flight(st)
        res["finished_start"] = finished(st)
        exe = os.path.join(BUILD, "bench", "status_poll")
        c0, l0 = d.cpu(), loop_cpu(d.pid)
        tp = time.monotonic()
        if os.access(exe, os.X_OK):
            res["poller"] = "build/bench/status_poll (C)"
            out = subprocess.run([exe, "--socket", d.sock, "--job", job, "--clients", str(STATUS_CLIENTS),
                                  "--seconds", "%g" % STATUS_S], capture_output=True, text=True,
                                 timeout=STATUS_S + 120)
            line = [x for x in out.stdout.splitlines() if x.strip().startswith("{")]
            if not line:
                raise RuntimeError("status_poll: rc %d %s" % (out.returncode, out.stderr[-400:]))
            res.update(json.loads(line[-1]))
        else:
            res["poller"] = "Python fallback (bench.py threads; build/bench/status_poll missing)"
            log("  build/bench/status_poll missing: using the Python poller (its own CPU inflates the numbers)")
            res.update(py_status_poll(d.sock, job, STATUS_CLIENTS, STATUS_S))
        res["poll_s"] = round(time.monotonic() - tp, 2)
        res["daemon_cpu_s"] = round(d.cpu() - c0, 2)
        res["loop_cpu_s"] = round(loop_cpu(d.pid) - l0, 2)
        st = d.status(job)
        res["in_flight_end"] = in_flight(st)
        res["finished_end"] = finished(st)
        res["calls_per_s_during"] = round((res["finished_end"] - res["finished_start"]) / max(1e-3, res["poll_s"]), 1)
        log("  status: %s" % {k: v for k, v in res.items() if k != "run_id"})
        t1, st = d.wait_done(job, poll=0.1)
        res["job_state"] = st.get("state")
        res["job_wall_s"] = round(t1 - t0, 2)
    finally:
        d.stop()
        sim.stop()
    RESULTS["status"] = res


def bench_ratelimit():
    log("2. rate limits: %d s runs, side by side" % RATE_S)
    # Token-heavy items: ~6 KB of context each, about 2,100 tokens a call.
    tpm = RATE_TPM
    est_tokens = 2150
    n_rpm = SIM_RPM // 60 * RATE_S
    n_tpm = max(50, int(tpm / 60.0 * RATE_S / est_tokens))
    low = SIM_RPM // 2
    n_abs = int(low * max(1.05, RATE_S / 60.0 * 0.9))
    s_rpm = Sim("rpm", "--latency-ms", str(LATENCY_MS), "--rpm", str(SIM_RPM))
    s_tpm = Sim("tpm", "--latency-ms", str(LATENCY_MS), "--tpm", str(tpm))
    s_abs = Sim("abs", "--latency-ms", str(LATENCY_MS), "--rpm", str(low))
    d = Daemon("rl", {"rpm": (s_rpm, {"rpm": SIM_RPM}), "tpm": (s_tpm, {"tpm": tpm}),
                      "abs": (s_abs, {"rpm": SIM_RPM})})
    d.start()
    f_rpm, f_tpm, f_abs = (os.path.join(T, x) for x in ("rpm.jsonl", "tpm.jsonl", "abs.jsonl"))
    gen_items(n_rpm, f_rpm, "rpm-")
    gen_items(n_tpm, f_tpm, "tpm-", "--pad", "6000")
    gen_items(n_abs, f_abs, "abs-")
    ids = {k: d.import_file(f, k)[0]["id"] for k, f in (("rpm", f_rpm), ("tpm", f_tpm), ("abs", f_abs))}
    for s in (s_rpm, s_tpm, s_abs):
        s.reset()
    t0 = time.monotonic()
    jobs = {k: d.submit(ids[k], k, "rl-" + k) for k in ("rpm", "tpm", "abs")}
    ends = {}
    deadline = t0 + RATE_S * 4 + 120
    while len(ends) < 3 and time.monotonic() < deadline:
        for k, j in jobs.items():
            if k in ends:
                continue
            st = d.status(j)
            if st.get("state") in ("done", "failed", "cancelled"):
                ends[k] = (time.monotonic(), st)
        time.sleep(0.1)
    res = {}
    for k, s, lim, n in (("rpm", s_rpm, SIM_RPM, n_rpm), ("tpm", s_tpm, tpm, n_tpm),
                         ("abs", s_abs, low, n_abs)):
        ss = s.stats()
        if k not in ends:
            res[k] = {"error": "job did not finish in time", "sim": ss}
            continue
        t1, st = ends[k]
        wall = t1 - t0
        c = counts(st)
        r = {"items": n, "wall_s": round(wall, 2), "state": st.get("state"),
             "done": int(c.get("done", 0)), "failed": int(c.get("failed", 0)),
             "dropped": int(c.get("dropped", 0)), "requests": ss["requests_total"],
             "sim_429": ss.get("rate_limited_429", ss.get("sent_429", 0)), "limit": lim}
        if k == "tpm":
            tok = ss.get("prompt_tokens", 0) + ss.get("completion_tokens", 0)
            r["tokens"] = tok
            r["achieved_per_min"] = round(tok / wall * 60)
            r["tokens_per_call"] = round(tok / max(1, ss["requests_total"]))
        else:
            ok = ss.get("by_status", {}).get("200", 0)
            r["achieved_per_min"] = round(ok / wall * 60)
        r["fraction"] = round(r["achieved_per_min"] / lim, 4)
        res[k] = r
        log("  %s: %s" % (k, r))
    res["config_rpm"] = SIM_RPM
    RESULTS["ratelimit"] = res
    d.stop()
    for s in (s_rpm, s_tpm, s_abs):
        s.stop()


# ---- 3 + 4. scale and resume ----

def store_page_cache_kib():
    try:
        src = open(os.path.join(TOP, "store", "store.c")).read()
        m = re.search(r"cache_size\s*=\s*(-?\d+)", src)
        v = int(m.group(1))
        return -v if v < 0 else v * 4  # pages of 4 KiB
    except (OSError, AttributeError, ValueError):
        return 2000  # SQLite's default -2000


def bench_selection():
    n = int(os.environ.get("BENCH_SEL_N", "100000"))
    log("5. selection cost: %d items" % n)
    out = subprocess.run([os.path.join(BUILD, "bench", "select_cost"), str(n),
                          os.path.join(T, "select_cost"), "64"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError("select_cost failed: " + out.stderr[-400:])
    RESULTS["selection"] = json.loads(out.stdout)
    log("  %s" % RESULTS["selection"])


def bench_scale(items_path, gen_proc):
    N = SCALE_N
    log("3+4. scale and resume: %d items" % N)
    if gen_proc is not None:
        gen_proc.wait()
        if gen_proc.returncode != 0:
            raise RuntimeError("gen_items failed")
    res = {"n": N, "file_bytes": os.path.getsize(items_path),
           "page_cache_kib": store_page_cache_kib(), "run_id": RUN_ID, "kill_left": KILL_LEFT}
    sim = Sim("big", "--latency-ms", str(LATENCY_MS))
    d = Daemon("big", {"sim": (sim, {})})
    d.start()
    rss0 = proc_mem(d.pid)[0]
    ds, dt = d.import_file(items_path, "big")
    res["import"] = {"items": ds.get("items"), "s": round(dt, 2),
                     "items_per_s": round(ds.get("items", 0) / dt),
                     "mb_per_s": round(res["file_bytes"] / dt / 1e6, 1),
                     "daemon_peak_rss_kib": proc_mem(d.pid)[1], "rss_before_kib": rss0}
    log("  import: %s" % res["import"])
    # The import's peak (its duplicate-id set) is not the job's: VmHWM
    # starts again from the current RSS, right before the submit.
    res["hwm_reset"] = reset_hwm(d.pid)
    res["rss_at_submit_kib"] = proc_mem(d.pid)[0]
    sim.reset()
    l0 = loop_cpu(d.pid)
    t0 = time.monotonic()
    job = d.submit(ds["id"], "sim", "big")
    res["submit_s"] = round(time.monotonic() - t0, 4)
    res["first_call_s"] = None
    while time.monotonic() - t0 < 30:
        if sim.stats()["requests_total"] > 0:
            res["first_call_s"] = round(time.monotonic() - t0, 4)
            res["first_call_loop_cpu_s"] = round(loop_cpu(d.pid) - l0, 3)
            break
        time.sleep(0.002)
    log("  submit to first call: %s s (submit answered in %s s)" % (res["first_call_s"], res["submit_s"]))
    lat, lat_full = [], []
    rss_max = 0
    kill_at = max(1, N - KILL_LEFT)
    conn = None
    last_rss = 0.0
    killed = None
    while True:
        now = time.monotonic()
        if now - last_rss > 0.25:
            rss_max = max(rss_max, proc_mem(d.pid)[0])
            last_rss = now
        try:
            if conn is None:
                conn = UnixConn(d.sock, timeout=30)
            a = time.perf_counter()
            st, obj = http_json(conn, "GET", "/v1/jobs/" + job)
            ms = (time.perf_counter() - a) * 1000
        except (OSError, http.client.HTTPException):
            conn = None
            if d.p.poll() is not None:
                raise RuntimeError("medthinkd exited during the 1M job: " + d.tail())
            continue
        lat.append(ms)
        if in_flight(obj) >= CONC * 0.9:
            lat_full.append(ms)
        capped = now - t0 > JOB_CAP_S
        if finished(obj) >= kill_at or capped:
            if capped:
                NOTES.append("the %d-item job was killed at %.1f%% (not %d items before its end): the "
                             "%d s time cap of the run was reached" % (N, finished(obj) * 100.0 / N,
                                                                       KILL_LEFT, JOB_CAP_S))
                log("  " + NOTES[-1])
            rss_max = max(rss_max, proc_mem(d.pid)[0])
            res["job_hwm_kib"] = proc_mem(d.pid)[1]
            d.p.send_signal(signal.SIGKILL)
            d.p.wait()
            killed = time.monotonic()
            break
        if obj.get("state") in ("done", "failed", "cancelled"):
            break
        time.sleep(0.05)
    if conn:
        conn.close()
    pre = {"wall_s": round(killed - t0, 2) if killed else None, "finished_at_kill": finished(obj)}
    res["job_pre_kill"] = pre
    res["get_latency"] = {"samples": len(lat), "p50_ms": round(pct(lat, 50), 3),
                          "p99_ms": round(pct(lat, 99), 3), "max_ms": round(max(lat), 3),
                          "samples_512": len(lat_full),
                          "p50_512_ms": round(pct(lat_full, 50), 3),
                          "p99_512_ms": round(pct(lat_full, 99), 3)}
    log("  GET latency: %s" % res["get_latency"])
    if not killed:
        raise RuntimeError("job finished before it could be killed: %s" % obj)
    time.sleep(0.5)  # nothing left in transit to the simulator
    # Only the last row id now (a few pages): counting a million rows here
    # would warm the page cache for the restart. Rows stored before the kill
    # are the ones with id <= it; they are counted after the job's end.
    db = sqlite3.connect(d.db, timeout=60)
    max_id = db.execute("SELECT max(id) FROM calls").fetchone()[0] or 0
    db.close()
    s_kill = sim.stats()
    r0 = s_kill["requests_total"]
    pre["calls_per_s"] = round(r0 / (killed - t0), 1)
    # Restart: time to the first new call reaching the simulator.
    t_restart = time.monotonic()
    d.start(wait=False)
    first = None
    while time.monotonic() - t_restart < 30:
        if sim.stats()["requests_total"] > r0:
            first = time.monotonic() - t_restart
            break
        time.sleep(0.003)
    d.wait_health()
    res["restart_health_s"] = round(time.monotonic() - t_restart, 3)
    rss_resume_max = 0
    lat2 = []
    conn = UnixConn(d.sock, timeout=30)
    while True:
        rss_resume_max = max(rss_resume_max, proc_mem(d.pid)[0])
        a = time.perf_counter()
        try:
            _, obj = http_json(conn, "GET", "/v1/jobs/" + job)
        except (OSError, http.client.HTTPException):
            conn = UnixConn(d.sock, timeout=30)
            if d.p.poll() is not None:
                raise RuntimeError("medthinkd exited after restart: " + d.tail())
            continue
        lat2.append((time.perf_counter() - a) * 1000)
        if obj.get("state") in ("done", "failed", "cancelled"):
            break
        if time.monotonic() - t_restart > RESUME_S:
            # Time budget: pause, let the calls in flight land, compare then.
            NOTES.append("the resumed job was paused at %.1f%% after %d s (time budget); the "
                         "no-resend check compares the counts at that point"
                         % (finished(obj) * 100.0 / N, RESUME_S))
            log("  " + NOTES[-1])
            d.api("POST", "/v1/jobs/%s/pause" % job)
            lim = time.monotonic() + 60
            while time.monotonic() < lim:
                obj = d.status(job)
                if in_flight(obj) == 0:
                    break
                time.sleep(0.1)
            time.sleep(0.5)
            obj = d.status(job)
            break
        time.sleep(0.1)
    conn.close()
    t_end = time.monotonic()
    s_end = sim.stats()
    resumed_hwm = proc_mem(d.pid)[1]
    db = sqlite3.connect(d.db, timeout=60)
    stored = db.execute("SELECT count(*), count(DISTINCT hash) FROM calls WHERE job_id = ? "
                        "AND error IS NULL AND id <= ?", (job_num(job), max_id)).fetchone()
    stored_all = db.execute("SELECT count(*) FROM calls WHERE id <= ?", (max_id,)).fetchone()[0]
    stored_end = db.execute("SELECT count(*), count(DISTINCT hash) FROM calls WHERE job_id = ? "
                            "AND error IS NULL", (job_num(job),)).fetchone()
    db.close()
    sent_after = s_end["requests_total"] - r0
    res["resume"] = {"stored_at_kill": stored[0], "distinct_stored_at_kill": stored[1],
                     "store_calls_at_kill": stored_all, "pending_at_kill": N - pre["finished_at_kill"],
                     "sent_before_kill": r0, "in_flight_lost": r0 - stored[0],
                     "restart_to_first_call_s": round(first, 3) if first is not None else None,
                     "sent_after_restart": sent_after,
                     "expected_after_restart": stored_end[1] - stored[1],
                     "duplicate_bodies": s_end.get("duplicate_bodies"),
                     "max_requests_per_body": s_end.get("max_requests_per_body"),
                     "stored_at_end": stored_end[0], "distinct_stored_at_end": stored_end[1],
                     "state": obj.get("state"), "failed": int(counts(obj).get("failed", 0)),
                     "finish_s_after_restart": round(t_end - t_restart, 2)}
    res["rss"] = {"job_max_rss_kib": rss_max, "resumed_max_rss_kib": rss_resume_max,
                  "job_hwm_kib": res.get("job_hwm_kib", 0), "resumed_hwm_kib": resumed_hwm}
    log("  resume: %s" % res["resume"])
    log("  rss: %s" % res["rss"])
    # Exports of the finished job, every format (not in BENCH_ONLY=issue17).
    res["export"] = {}
    for fmt in (("openai", "sharegpt", "alpaca", "grpo") if not ONLY or "scale" in ONLY else ()):
        c = UnixConn(d.sock, timeout=600)
        a = time.monotonic()
        c.request("GET", "/v1/jobs/%s/export?set=1&format=%s" % (job, fmt))
        r = c.getresponse()
        lines = nbytes = 0
        cut = False
        while True:
            chunk = r.read1(1 << 20)
            if not chunk:
                break
            lines += chunk.count(b"\n")
            nbytes += len(chunk)
            if time.monotonic() - a > EXPORT_S:
                cut = True
                break
        dt = time.monotonic() - a
        c.close()
        res["export"][fmt] = {"status": r.status, "records": lines, "bytes": nbytes, "cut": cut,
                              "s": round(dt, 2), "records_per_s": round(lines / dt) if dt else 0,
                              "mb_per_s": round(nbytes / dt / 1e6, 1) if dt else 0}
        log("  export %s: %s" % (fmt, res["export"][fmt]))
    res["export_rss_kib"] = proc_mem(d.pid)[1]
    RESULTS["scale"] = res
    d.stop()
    sim.stop()


# ---- report ----

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def machine():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "mem": mem, "kernel": platform.release(),
            "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "commit": sh("git -C %s rev-parse --short HEAD" % TOP),
            "libcurl": sh("curl-config --version"), "sqlite": sqlite3.sqlite_version,
            "python": sh(PY + " -c 'import sys,aiohttp;print(sys.version.split()[0], \"aiohttp\", aiohttp.__version__)'")}


def verdict(ok):
    return "met" if ok else "**missed**"


def fmt_kib(k):
    return "%.1f MiB" % (k / 1024.0)


def e2e_report(w):
    e = RESULTS.get("e2e")
    w("## 7. End to end: submit to done")
    w("")
    if not e or not e.get("sizes"):
        w("Not run.")
        w("")
        return
    if "rounds" not in e["sizes"][0]:  # saved by an older bench.py
        w("Saved by an older bench.py; rerun `BENCH_ONLY=e2e make bench`.")
        w("")
        return
    w("As a user times it: from sending `POST /v1/jobs` to the first `GET /v1/jobs/{id}` (polled "
      "every 20 ms) that reports the job done; stage-one jobs (one explain call per item), simulator "
      "latency %d ms, %d in flight, one daemon for every round (its store grows from round to round). "
      "At each size the daemon (a) and the bare curl-multi loop (b) run %d round(s), alternating "
      "(a b, then b a, ...); (b) sends the bodies the daemon sent in its first round (read from its "
      "calls table, re-asks included), timed from its process start to exit. a/b is the ratio of "
      "calls/s within a round (the same calls: wall of b / wall of a); the summary is the median over "
      "the rounds. CPU: user+sys from /proc/PID/stat for the whole "
      "process (all threads) and from /proc/PID/task/PID/stat for the event-loop thread (the main "
      "thread); for (b) getrusage, RUSAGE_SELF and RUSAGE_THREAD, from the first request to the "
      "last reply.%s"
      % (LATENCY_MS, CONC, e.get("rounds", 1),
         " (c) the aiohttp + sqlite3 script on the same bodies, once per size." if any(s.get("c") for s in e["sizes"]) else
         " The aiohttp baseline was skipped (BENCH_E2E_AIO=0)."))
    w("")
    if e.get("load"):
        w(load_line(e["load"]))
        w("")
    w("| items | round | (a) medthinkd calls/s | (b) bare loop calls/s | a/b | CPU ms/call a / b (whole process) | a/b | loop thread ms/call a / b | a/b | first call (a) | peak RSS (a) | state |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for s in e["sizes"]:
        for i, rr in enumerate(s["rounds"]):
            a, b = rr["a"], rr["b"]
            w("| %s | %d | %.0f (%.2f s) | %.0f (%.2f s) | %.3f | %.4f / %.4f | %.2f | %.4f / %s | %s | %s | %s | %s, %d failed |"
              % ("{:,}".format(s["n"]), i + 1, a["calls_per_s"], a["wall_s"], b["calls_per_s"], b["wall_s"],
                 rr["ratio"] or 0, a["cpu_ms_per_call"], b["cpu_ms_per_call"], rr["cpu_ratio"] or 0,
                 a["loop_cpu_ms_per_call"],
                 "%.4f" % b["loop_cpu_ms_per_call"] if b.get("loop_cpu_ms_per_call") is not None else "-",
                 "%.2f" % rr["loop_cpu_ratio"] if rr.get("loop_cpu_ratio") is not None else "-",
                 "%.1f ms" % (a["first_call_s"] * 1000) if a.get("first_call_s") is not None else "none",
                 fmt_kib(a["max_rss_kib"]), a["state"], a["failed"]))
        w("| %s | **median** | %.0f | %.0f | **%.3f** | %.4f / %.4f | **%.2f** | | %s | | | |"
          % ("{:,}".format(s["n"]), s["med"]["a"]["calls_per_s"], s["med"]["b"]["calls_per_s"], s["ratio"] or 0,
             s["med"]["a"]["cpu_ms_per_call"], s["med"]["b"]["cpu_ms_per_call"], s["cpu_ratio"] or 0,
             "%.2f" % s["loop_cpu_ratio"] if s.get("loop_cpu_ratio") is not None else "-"))
    w("")
    rs = [s for s in e["sizes"] if s.get("cpu_ratio_r") is not None]
    if rs:
        w("(r) is the issue's own bare loop, ../shared/bench/curlmulti.c unchanged (built with gcc -O2 as "
          "compare.sh builds it): an easy handle per call, every reply parsed with jansson, its own fixed "
          "body; it runs in the same rounds (a b r, then r b a, ...) against the same simulator and sends "
          "as many calls as the daemon did. Wall from its process start to exit; CPU from wait4's rusage.")
        w("")
        w("| items | round | (r) calls/s | a/r | CPU ms/call a / r (whole process) | a/r |")
        w("|---:|---:|---:|---:|---:|---:|")
        for s in rs:
            for i, rr in enumerate(s["rounds"]):
                x = rr["r"]
                w("| %s | %d | %.0f (%.2f s) | %.3f | %.4f / %.4f | %.2f |"
                  % ("{:,}".format(s["n"]), i + 1, x["calls_per_s"], x["wall_s"], rr["ratio_r"] or 0,
                     rr["a"]["cpu_ms_per_call"], x["cpu_ms_per_call"], rr["cpu_ratio_r"] or 0))
            w("| %s | **median** | %.0f | **%.3f** | %.4f / %.4f | **%.2f** |"
              % ("{:,}".format(s["n"]), s["med"]["r"]["calls_per_s"], s["ratio_r"] or 0,
                 s["med"]["a"]["cpu_ms_per_call"], s["med"]["r"]["cpu_ms_per_call"], s["cpu_ratio_r"]))
        w("")
    cs = [s for s in e["sizes"] if s.get("c")]
    if cs:
        w("(c) asyncio + aiohttp + sqlite3: " + "; ".join(
            "%s items %.0f items/s (%.2f s), a/c %.2f" % ("{:,}".format(s["n"]), s["c"]["items"] / s["c"]["wall_s"],
                                                      s["c"]["wall_s"], s["med"]["a"]["items_per_s"] /
                                                      (s["c"]["items"] / s["c"]["wall_s"])) for s in cs) + ".")
        w("")
    if e.get("marginal_a"):
        w("Fixed cost and marginal rate from the two sizes (median walls; wall = fixed + items / rate):")
        w("")
        w("| runner | fixed cost | marginal rate |\n|---|---:|---:|")
        for k, name in (("a", "(a) medthinkd"), ("b", "(b) bare curl-multi loop"), ("c", "(c) aiohttp + sqlite3")):
            if e.get("marginal_" + k):
                w("| %s | %.3f s | %s items/s |" % (name, e["fixed_" + k], "{:,.0f}".format(e["marginal_" + k])))
        if e.get("marginal_b"):
            w("")
            w("Marginal rate a/b: %.3f (target >= 0.9)." % (e["marginal_a"] / e["marginal_b"]))
    else:
        w("Fixed cost and marginal rate: need two sizes with different walls (BENCH_E2E_N).")
    w("")


def status_report(w):
    st = RESULTS.get("status")
    w("## 8. Status under load")
    w("")
    if not st or "count" not in st:
        w("Not run." if not st else "No result: %s" % st)
        w("")
        return
    w("A stage-one job of %s items (latency %d ms, %d in flight) in a fresh daemon; once at least "
      "%d calls are in flight, %d clients each send `GET /v1/jobs/{id}` over the unix socket back to "
      "back (keep-alive) for %g s or until the job ends. Poller: %s."
      % ("{:,}".format(st["n"]), LATENCY_MS, CONC, int(CONC * 0.9), st["clients"], st["seconds"], st["poller"]))
    w("")
    if st.get("load"):
        w(load_line(st["load"]))
        w("")
    w("| measure | measured | target | |\n|---|---:|---|---|")
    w("| GET /v1/jobs/{id} latency | p50 %.2f ms, p99 %.2f ms, max %.1f ms (%s requests in %.1f s, %d errors) | p99 < 5 ms | %s |"
      % (st["p50_ms"], st["p99_ms"], st["max_ms"] or 0, "{:,}".format(st["count"]), st.get("poll_s", 0),
         st["errors"], "not decided" if status_verdict(st) is None else verdict(status_verdict(st))))
    w("| calls in flight when the polling started / ended | %d / %d | >= %d | |"
      % (st["in_flight_start"], st["in_flight_end"], int(CONC * 0.9)))
    w("| job rate while polled | %.0f calls/s | | |" % st.get("calls_per_s_during", 0))
    w("| daemon CPU while polled (whole process / loop thread) | %.2f s / %.2f s | | |"
      % (st.get("daemon_cpu_s", 0), st.get("loop_cpu_s", 0)))
    w("| job | %s, %.1f s from submit to done | | |" % (st.get("job_state"), st.get("job_wall_s", 0)))
    w("")


def write_report(path, total_s, errors, m=None, ran=None):
    """Writes docs/PERFORMANCE.md. ran: the benchmarks of a partial run
    (BENCH_ONLY): only their sections are replaced in the existing file."""
    m = m or machine()
    L = []
    w = L.append
    w("# medthink performance")
    w("")
    w("Written by `make bench` (bench/run.sh -> bench/bench.py); do not edit by hand: "
      "the analysis at the end comes from bench/FINDINGS.md.")
    w("")
    w("## Machine")
    w("")
    w("| | |\n|---|---|")
    w("| CPU | %s x %s |" % (m["nproc"], m["cpu"]))
    w("| memory | %s |" % m["mem"])
    w("| kernel / OS | %s / %s |" % (m["kernel"], m["os"]))
    w("| libraries | %s, SQLite %s, Python %s |" % (m["libcurl"], m["sqlite"], m["python"]))
    if ran is None:
        w("| run | %s, commit %s, all benchmarks run in %.0f s |" % (m["date"], m["commit"], total_s))
    else:
        w("| run | %s, commit %s, BENCH_ONLY=%s (%s) in %.0f s; the other sections keep an earlier "
          "run's numbers |" % (m["date"], m["commit"], ",".join(ONLY), ", ".join(ran) or "nothing", total_s))
    w("")
    w("Every benchmark starts its own `bin/medthink-sim` (a simulator, not a model; "
      "`--contradict-rate 0` so each item needs exactly one call) and `bin/medthinkd` on "
      "loopback in a temporary directory. CPU is user+sys from /proc/PID/stat (all threads) "
      "between submit and the job's end; RSS is sampled from /proc/PID/status. The simulator "
      "shares the two cores with whatever is measured.")
    w("")
    if NOTES:
        w("Noted during the run:")
        w("")
        for n_ in NOTES:
            w("- " + n_)
        w("")
    if errors:
        w("**Errors in this run:**")
        w("")
        for e in errors:
            w("- " + e.replace("\n", " ")[:600])
        w("")
    issue17_section(w)

    tp = RESULTS.get("throughput")
    w("## 1. Orchestration throughput")
    w("")
    if tp:
        a, b, c = tp["a"], tp["b"], tp["c"]
        w("Stage-one job of %d items (strategy none: one explain call per item), simulator "
          "latency %d ms, %d in flight, HTTP/1.1 keep-alive. Ideal: %d calls/s. Request bodies "
          "for (b) and (c): %s (the exact bytes medthinkd sent, mean %d bytes). (a) and (b) ran "
          "twice, alternating; the best round of each is shown, every round is listed below."
          % (tp["n"], LATENCY_MS, CONC, CONC * 1000 // LATENCY_MS, tp.get("bodies", "?"),
             tp.get("body_bytes_avg", 0)))
        w("")
        w("| runner | calls/s | % of ideal | CPU s / 1,000 calls | stores |")
        w("|---|---:|---:|---:|---|")
        ideal = CONC * 1000.0 / LATENCY_MS
        w("| (a) medthinkd | %.0f | %.1f%% | %.4f | every call, task and artifact (SQLite WAL) |"
          % (a["calls_per_s"], a["calls_per_s"] / ideal * 100, a["cpu_s_per_1k"]))
        w("| (b) bare libcurl-multi + libuv (bench/curl_multi.c) | %.0f | %.1f%% | %.4f | nothing |"
          % (b["calls_per_s"], b["calls_per_s"] / ideal * 100, b["cpu_s_per_1k"]))
        w("| (c) asyncio + aiohttp + sqlite3 (bench/aiohttp_sqlite.py) | %.0f | %.1f%% | %.4f | "
          "each reply, commit per reply (WAL) |"
          % (c["calls_per_s"], c["calls_per_s"] / ideal * 100, c["cpu_s_per_1k"]))
        w("")
        r_ab = a["calls_per_s"] / b["calls_per_s"]
        r_ac = a["calls_per_s"] / c["calls_per_s"]
        cpu_ac = a["cpu_s_per_1k"] / c["cpu_s_per_1k"] if c["cpu_s_per_1k"] else 0
        w("| target | measured | |\n|---|---:|---|")
        w("| (a) >= 0.9 x (b) calls/s | %.3f x | %s |" % (r_ab, verdict(r_ab >= 0.9)))
        w("| (a) >= 5 x (c) calls/s | %.2f x | %s |" % (r_ac, verdict(r_ac >= 5)))
        w("| (a) CPU per call <= 1/5 of (c) | %.3f of (c) | %s |" % (cpu_ac, verdict(cpu_ac <= 0.2)))
        w("")
        w("Rounds: " + "; ".join("round %d: (a) %.0f calls/s %.4f CPU-s/1k, (b) %.0f calls/s %.4f CPU-s/1k"
                                 % (i + 1, r["a"]["calls_per_s"], r["a"]["cpu_s_per_1k"],
                                    r["b"]["calls_per_s"], r["b"]["cpu_s_per_1k"])
                                 for i, r in enumerate(tp["rounds"])) + ".")
        w("(a) wall %.2f s, CPU %.2f s, %d calls, %d failed items; (c) wall %.2f s, CPU %.2f s."
          % (a["wall_s"], a["cpu_s"], a["calls"], a["failed"], c["wall_s"], c["cpu_s"]))
    else:
        w("Not run.")
    w("")

    rl = RESULTS.get("ratelimit")
    w("## 2. Rate-limit fidelity")
    w("")
    if rl:
        w("Three jobs side by side in one daemon, each against its own simulator (latency %d ms, "
          "%d in flight allowed). Runs are sized for about %d s; the simulator enforces its "
          "limits over a sliding 60 s window. Achieved rate = successful requests (or tokens) "
          "seen by the simulator / time from submit to the job's end." % (LATENCY_MS, CONC, RATE_S))
        w("")
        w("| run | config | simulator limit | items | wall s | achieved /min | of limit | 429s | failed items | target | |")
        w("|---|---|---|---:|---:|---:|---:|---:|---:|---|---|")
        for k, cfg, lim, tgt in (("rpm", "rpm %d" % SIM_RPM, "rpm %d" % SIM_RPM, ">= 97%, zero 429"),
                                 ("tpm", "tpm %d" % RATE_TPM, "tpm %d" % RATE_TPM, ">= 97%, zero 429"),
                                 ("abs", "rpm %d" % SIM_RPM, "rpm %d" % (SIM_RPM // 2),
                                  "429s absorbed, no failed item")):
            r = rl.get(k)
            if not r or "error" in r:
                w("| %s | %s | %s | | | | | | | %s | **error: %s** |"
                  % (k, cfg, lim, tgt, (r or {}).get("error", "not run")))
                continue
            if k == "abs":
                ok = r["state"] == "done" and r["failed"] == 0 and r["done"] == r["items"]
            else:
                ok = r["fraction"] >= 0.97 and r["sim_429"] == 0
            w("| %s | %s | %s | %d | %.1f | %d | %.1f%% | %d | %d | %s | %s |"
              % (k, cfg, lim, r["items"], r["wall_s"], r["achieved_per_min"], r["fraction"] * 100,
                 r["sim_429"], r["failed"], tgt, verdict(ok)))
        t = rl.get("tpm") or {}
        if "tokens_per_call" in t:
            w("")
            w("Token-heavy run: about %d tokens a call (prompt + completion, as the simulator "
              "counts them)." % t["tokens_per_call"])
        a = rl.get("abs") or {}
        if "requests" in a:
            w("Absorb run: %d requests for %d items: %d were answered 429 with Retry-After and "
              "retried." % (a["requests"], a["items"], a["sim_429"]))
    else:
        w("Not run.")
    w("")

    sc = RESULTS.get("scale")
    w("## 3. Scale (%s items)" % ("{:,}".format(sc["n"]) if sc else "1M"))
    w("")
    if sc:
        imp = sc["import"]
        rss = sc.get("rss", {})
        g = sc.get("get_latency", {})
        w("Synthetic items from bench/gen_items.py (%.0f MB of native JSONL), streamed to "
          "`POST /v1/datasets` by one client. The job runs with latency %d ms and %d in flight; "
          "it is the same job that benchmark 4 kills and resumes." % (sc["file_bytes"] / 1e6, LATENCY_MS, CONC))
        w("")
        if sc.get("load"):
            w(load_line(sc["load"]))
            w("")
        w("| measure | measured | target | |\n|---|---:|---|---|")
        w("| import | %s items/s (%.1f s, %.0f MB/s) | | |" % ("{:,}".format(imp["items_per_s"]), imp["s"], imp["mb_per_s"]))
        w("| import: daemon peak RSS (VmHWM) | %s | | |" % fmt_kib(imp["daemon_peak_rss_kib"]))
        if "first_call_s" in sc:
            fc = sc["first_call_s"]
            w("| submit to the first call the simulator receives (polled every 2 ms) | %s (submit answered in %.3f s) | < 50 ms | %s |"
              % ("%.3f s" % fc if fc is not None else "none in 30 s", sc["submit_s"],
                 verdict(fc is not None and fc < 0.05)))
            if "first_call_loop_cpu_s" in sc:
                w("| loop-thread CPU from submit to the first call | %.3f s | | |" % sc["first_call_loop_cpu_s"])
        for fmt, e in sc.get("export", {}).items():
            if e.get("cut"):
                note = "first %s records: read stopped after %.0f s (time budget)" % (
                    "{:,}".format(e["records"]), EXPORT_S)
            elif e["records"] == sc["n"]:
                note = "all %s records" % "{:,}".format(e["records"])
            else:
                note = "**%d records, want %d**" % (e["records"], sc["n"])
            w("| export %s | %s records/s (%.1f s, %.0f MB/s) | | %s |"
              % (fmt, "{:,}".format(e["records_per_s"]), e["s"], e["mb_per_s"], note))
        jr = max(rss.get("job_max_rss_kib", 0), rss.get("resumed_max_rss_kib", 0))
        hw = max(rss.get("job_hwm_kib", 0), rss.get("resumed_hwm_kib", 0))
        w("| daemon RSS during the job (max of samples every 0.25 s, before the kill and after the restart) "
          "| %s | < 64 MiB (SQLite's page cache is %s of it) | %s |"
          % (fmt_kib(jr), fmt_kib(sc["page_cache_kib"]), verdict(jr < 64 * 1024)))
        if hw:
            w("| daemon VmHWM: from the submit to the kill%s / the restarted daemon | %s / %s | < 64 MiB | %s |"
              % ("" if sc.get("hwm_reset") else " (reset refused: includes the import)",
                 fmt_kib(rss.get("job_hwm_kib", 0)), fmt_kib(rss.get("resumed_hwm_kib", 0)), verdict(hw < 64 * 1024)))
        if g:
            w("| GET /v1/jobs/{id} from one client every 50 ms, all samples (%d) | p50 %.2f ms, p99 %.2f ms, max %.1f ms | (50 clients: section 8) | |"
              % (g["samples"], g["p50_ms"], g["p99_ms"], g["max_ms"]))
            w("| the same, while >= %d in flight (%d) | p50 %.2f ms, p99 %.2f ms | | |"
              % (int(CONC * 0.9), g["samples_512"], g["p50_512_ms"], g["p99_512_ms"]))
        pre = sc.get("job_pre_kill", {})
        if pre.get("calls_per_s"):
            w("| job rate from submit to the kill (at %.1f%%) | %.0f calls/s | | |"
              % (pre["finished_at_kill"] * 100.0 / sc["n"], pre["calls_per_s"]))
    else:
        w("Not run.")
    w("")

    w("## 4. Resume after SIGKILL")
    w("")
    if sc and "resume" in sc:
        r = sc["resume"]
        first = r["restart_to_first_call_s"]
        no_resend = r["sent_after_restart"] == r["expected_after_restart"]
        w("The 1M job is killed with SIGKILL once all but %s of its items are finished (the "
          "restarted job itself then holds about a million stored calls and still has work), then "
          "medthinkd is started again on the same store (page cache warm). \"First new call\" is the "
          "first request the simulator receives after the exec (polled every 3 ms). Calls stored at "
          "the kill are counted after the job's end (rows with an id up to the last one at the kill), "
          "so that counting them does not warm the cache for the restart."
          % "{:,}".format(sc.get("kill_left", KILL_LEFT)))
        w("")
        w("| measure | measured | target | |\n|---|---:|---|---|")
        full = r.get("store_calls_at_kill", 10 ** 6) >= 990000
        w("| restart to first new call | %s | < 1 s with ~1M calls stored | %s |"
          % ("%.3f s" % first if first is not None else "none in 30 s",
             verdict(first is not None and first < 1) if full else
             "not decided (%s calls stored at the kill)" % "{:,}".format(r["store_calls_at_kill"])))
        w("| calls stored at the kill (distinct requests of the job; all rows of the store) | %s; %s | | |"
          % ("{:,}".format(r["distinct_stored_at_kill"]), "{:,}".format(r.get("store_calls_at_kill", 0))))
        if "restart_health_s" in sc:
            w("| restart to the first answer of /v1/health | %.3f s | | |" % sc["restart_health_s"])
        w("| requests the simulator had received at the kill | %s (so %d were in flight, unstored) | | |"
          % ("{:,}".format(r["sent_before_kill"]), r["in_flight_lost"]))
        w("| requests sent after the restart | %s | = calls stored after the restart: %s | %s |"
          % ("{:,}".format(r["sent_after_restart"]), "{:,}".format(r["expected_after_restart"]), verdict(no_resend)))
        w("| bodies the simulator saw twice / most sends of one body | %s / %s | only the unstored in-flight ones | |"
          % (r["duplicate_bodies"], r["max_requests_per_body"]))
        w("| job end | %s, %d failed, %s stored calls (%s distinct), %.1f s after the restart | done (or paused by the time budget), 0 failed | %s |"
          % (r["state"], r["failed"], "{:,}".format(r["stored_at_end"]), "{:,}".format(r["distinct_stored_at_end"]),
             r["finish_s_after_restart"], verdict(r["state"] in ("done", "paused") and r["failed"] == 0)))
        w("")
        w("Proof that no stored call is sent again: every request the simulator receives is "
          "counted; after the restart it received exactly as many requests as the store gained "
          "successful calls (a re-sent stored call would make the count larger), and the only bodies "
          "it saw twice are the calls that were in flight, never stored, when the daemon died.")
    else:
        w("Not run.")
    w("")

    pool_section(w)

    sl = RESULTS.get("selection")
    w("## 6. Selection cost (DIQ-like and 3DS)")
    w("")
    if sl:
        w("`build/bench/select_cost %d`: %s items imported into a fresh store (JSONL lines parsed and "
          "inserted in batches, as an upload does), then each strategy's choice as the runner makes it "
          "(read every score back, %d-dimension embeddings, budget 0.1, then the kept, the dropped and "
          "every item's scores written in one transaction). The scoring calls themselves are not "
          "counted: they are model calls like any other step's." % (sl["items"], "{:,}".format(sl["items"]), sl["dim"]))
        w("")
        w("| step | time | peak memory | time / import | memory / import |\n|---|---:|---:|---:|---:|")
        w("| import | %.2f s | %d KiB | 1 | 1 |" % (sl["import"]["s"], sl["import"]["peak_kib"]))
        for k, label in (("diq", "DIQ-like selection"), ("3ds", "3DS selection")):
            r = sl[k]
            w("| %s | %.2f s | %d KiB | %.2f | %.2f |" % (label, r["s"], r["peak_kib"], r["time_ratio"],
                                                        r["mem_ratio"]))
    else:
        w("Not run.")
    w("")
    e2e_report(w)
    status_report(w)
    reference_report(w)

    pf = RESULTS.get("profile")
    w("## Profile")
    w("")
    if pf and "self" in pf:
        w("`perf record -F 499 --call-graph dwarf -p PID` on medthinkd during a separate %d-item throughput job "
          "(after the measured rounds). Self time by DSO and symbol (>= 0.7%%):" % pf["calls"])
        w("")
        w("| self % | DSO | symbol |\n|---:|---|---|")
        for p_, dso, sym in pf["self"]:
            w("| %.2f | %s | `%s` |" % (p_, dso, sym))
        if pf.get("threads"):
            w("")
            w("CPU seconds per daemon thread during that job (wall %.2f s): %s." % (
                pf["wall_s"], ", ".join("%s %.2f" % tuple(t) for t in pf["threads"])))
        if pf.get("loop_states"):
            w("")
            w("Where the event-loop thread was, sampled every 2 ms from /proc (state and wchan): %s."
              % ", ".join("%s %.1f%%" % tuple(t) for t in pf["loop_states"]))
        if pf.get("children"):
            w("")
            w("Inclusive time (children) of medthinkd's own functions (>= 2%):")
            w("")
            w("| incl % | self % | function |\n|---:|---:|---|")
            for ch, se, sym in pf["children"]:
                w("| %.2f | %.2f | `%s` |" % (ch, se, sym))
    elif pf:
        w("Profile failed: %s" % pf.get("error"))
    else:
        w("Not run.")
    w("")
    fn = os.path.join(TOP, "bench", "FINDINGS.md")
    if os.path.exists(fn):
        w(open(fn).read().rstrip())
        w("")
    if ran is not None:
        L = merge_report(path, L, ran)
    with open(path, "w") as f:
        f.write("\n".join(L))


RATE_TPM = 2000000


# ---- issue 17: the targets, from this run's results only ----

def issue17_rows():
    """[(target, measured, met or None, section load)] from the results of
    this run (a result saved by an earlier run counts as not measured)."""
    def cur(k):
        r = RESULTS.get(k)
        return r if r and r.get("run_id") == RUN_ID else None
    rows = []
    e = cur("e2e")
    by_n = {s["n"]: s for s in e["sizes"]} if e else {}
    for n in (20000, 200000):
        s = by_n.get(n)
        if s and s.get("ratio") is not None:
            rr = ", ".join("%.3f" % r["ratio"] for r in s["rounds"])
            rows.append(("(1) submit to done >= 0.9 x the bare loop at %s items" % "{:,}".format(n),
                         "%.3f x (median of %d paired rounds: %s; %.0f vs %.0f calls/s)"
                         % (s["ratio"], len(s["rounds"]), rr, s["med"]["a"]["calls_per_s"],
                            s["med"]["b"]["calls_per_s"]),
                         s["ratio"] >= 0.9, e.get("load")))
        else:
            rows.append(("(1) submit to done >= 0.9 x the bare loop at %s items" % "{:,}".format(n),
                         "not measured in this run (BENCH_E2E_N)", None, None))
    def by_ref_loop(key, per, limit, ge):
        """One row over both sizes against the issue's bare loop (r), paired
        in section 7: met when every size is."""
        parts, ok = [], True
        for n in (20000, 200000):
            s = by_n.get(n)
            if not s or s.get(key) is None:
                return None
            parts.append("%s items: %s" % ("{:,}".format(n), per(s)))
            ok = ok and (s[key] >= limit if ge else s[key] <= limit)
        return "; ".join(parts), ok
    r1 = by_ref_loop("ratio_r", lambda s: "%.3f x (rounds: %s; %.0f vs %.0f calls/s)"
                     % (s["ratio_r"], ", ".join("%.3f" % r["ratio_r"] for r in s["rounds"]),
                        s["med"]["a"]["calls_per_s"], s["med"]["r"]["calls_per_s"]), 0.9, True)
    rows.append(("(1) the same, against the issue's bare loop (../shared/bench/curlmulti.c) in the same "
                 "rounds, at 20,000 and 200,000 items",
                 r1[0] if r1 else "not measured in this run (needs ../shared/bench/curlmulti.c)",
                 r1[1] if r1 else None, e.get("load") if r1 else None))
    ref = cur("reference")
    ref_by_n = {x["n"]: x for x in ref["sizes"]} if ref else {}
    for n in (20000, 200000):
        x = ref_by_n.get(n)
        tgt = ("(1) the same, by the issue's reference script (../shared/bench/compare.sh) at %s items"
               % "{:,}".format(n))
        if x:
            dec = decided(x["runs"])
            found = [r for r in x["runs"] if r.get("as_found")]
            py = ""
            if found:
                py = ("; its poll's python3 %s (the PATH's %s takes %.2f s to start: with it, %s)"
                      % (ref.get("poll_python3"), ref.get("python3_path"), ref.get("python3_start_s", 0),
                         ", ".join("%.3f" % r["ratio"] for r in found)))
            rows.append((tgt, "%.3f x (median of %d runs: %s%s)"
                         % (x["ratio"], len(dec), ", ".join("%.3f" % r["ratio"] for r in dec), py),
                         x["ratio"] >= 0.9, ref.get("load")))
        else:
            rows.append((tgt, "not measured in this run (BENCH_REF_N)", None, None))
    sc = cur("scale")
    if sc and "first_call_s" in sc:
        fc = sc["first_call_s"]
        rows.append(("(2) submit to first call < 50 ms at %s items" % "{:,}".format(sc["n"]),
                     "%s (submit answered in %.3f s)" % ("%.1f ms" % (fc * 1000) if fc is not None else "none in 30 s",
                                                         sc["submit_s"]),
                     (fc is not None and fc < 0.05) if sc["n"] >= 1000000 else None, sc.get("load")))
    else:
        rows.append(("(2) submit to first call < 50 ms at 1M items", "not measured in this run", None, None))
    r = (sc or {}).get("resume")
    if r:
        f = r["restart_to_first_call_s"]
        full = r["store_calls_at_kill"] >= 990000
        rows.append(("(3) restart to first call < 1 s with 1M calls stored",
                     "%s; %s calls stored at the SIGKILL (%s in the job, %s of its items pending)%s"
                     % ("%.3f s" % f if f is not None else "none in 30 s", "{:,}".format(r["store_calls_at_kill"]),
                        "{:,}".format(r["distinct_stored_at_kill"]), "{:,}".format(r["pending_at_kill"]),
                        "" if full else ": fewer than the target's million (the job was killed by the %.0f s "
                        "cap BENCH_JOB_CAP_S, or BENCH_SCALE_N is small), so this run cannot decide it" % JOB_CAP_S),
                     (f is not None and f < 1) if full else None, sc.get("load")))
    else:
        rows.append(("(3) restart to first call < 1 s with 1M calls stored", "not measured in this run", None, None))
    if by_n:
        parts, ok = [], True
        for n, s in sorted(by_n.items()):
            if s.get("cpu_ratio") is None:
                ok = False
                continue
            parts.append("%s items: %.3f vs %.3f ms = %.2f x (loop thread alone: %s vs %s ms = %s x)"
                         % ("{:,}".format(n), s["med"]["a"]["cpu_ms_per_call"], s["med"]["b"]["cpu_ms_per_call"],
                            s["cpu_ratio"],
                            "%.3f" % s["med"]["a"]["loop_cpu_ms_per_call"] if s["med"]["a"].get("loop_cpu_ms_per_call") is not None else "?",
                            "%.3f" % s["med"]["b"]["loop_cpu_ms_per_call"] if s["med"]["b"].get("loop_cpu_ms_per_call") is not None else "?",
                            "%.2f" % s["loop_cpu_ratio"] if s.get("loop_cpu_ratio") is not None else "?"))
            ok = ok and s["cpu_ratio"] <= 1.5
        rows.append(("(4) CPU per call <= 1.5 x the bare loop's (whole process, all threads; every size)",
                     "; ".join(parts), ok and bool(parts), e.get("load")))
    else:
        rows.append(("(4) CPU per call <= 1.5 x the bare loop's", "not measured in this run", None, None))
    r4 = by_ref_loop("cpu_ratio_r", lambda s: "%.4f vs %.4f ms = %.2f x (rounds: %s)"
                     % (s["med"]["a"]["cpu_ms_per_call"], s["med"]["r"]["cpu_ms_per_call"], s["cpu_ratio_r"],
                        ", ".join("%.2f" % r["cpu_ratio_r"] for r in s["rounds"])), 1.5, False)
    rows.append(("(4) the same, against the issue's bare loop (../shared/bench/curlmulti.c: an easy handle "
                 "per call, each reply parsed with jansson) in the same rounds",
                 r4[0] if r4 else "not measured in this run (needs ../shared/bench/curlmulti.c)",
                 r4[1] if r4 else None, e.get("load") if r4 else None))
    if ref_by_n:
        parts = ["%s items: %.4f vs %.4f ms = %.2f x (runs: %s)"
                 % ("{:,}".format(n), median([r["medthinkd"]["cpu_per_1k"] for r in decided(x["runs"])]),
                    median([r["curlmulti"]["cpu_per_1k"] for r in decided(x["runs"])]), x["cpu_ratio"],
                    ", ".join("%.2f" % r["cpu_ratio"] for r in decided(x["runs"])))
                 for n, x in sorted(ref_by_n.items())]
        rows.append(("(4) the same, by the issue's reference script (its loop parses each reply with jansson)",
                     "; ".join(parts), all(x["cpu_ratio"] <= 1.5 for x in ref_by_n.values()), ref.get("load")))
    else:
        rows.append(("(4) the same, by the issue's reference script", "not measured in this run", None, None))
    st = cur("status")
    if st and st.get("count"):
        rows.append(("(5) status p99 < 5 ms, %d clients polling during a %d-in-flight job" % (STATUS_CLIENTS, CONC),
                     "p99 %.2f ms (p50 %.2f, max %.1f; %d requests, %d errors; in flight %d -> %d; %s)"
                     % (st["p99_ms"], st["p50_ms"], st["max_ms"] or 0, st["count"], st["errors"],
                        st["in_flight_start"], st["in_flight_end"], st["poller"]),
                     status_verdict(st), st.get("load")))
    else:
        rows.append(("(5) status p99 < 5 ms with %d clients polling" % STATUS_CLIENTS,
                     "not measured in this run" if not st else "no answer counted", None, None))
    rs = (sc or {}).get("rss")
    if rs:
        peak = max(rs["job_max_rss_kib"], rs["resumed_max_rss_kib"], rs.get("job_hwm_kib", 0),
                   rs.get("resumed_hwm_kib", 0))
        rows.append(("(6) the %s-item job under 64 MiB RSS" % "{:,}".format(sc["n"]),
                     "%s (samples every 0.25 s: %s before the kill, %s after the restart; VmHWM %s%s, %s)"
                     % (fmt_kib(peak), fmt_kib(rs["job_max_rss_kib"]), fmt_kib(rs["resumed_max_rss_kib"]),
                        fmt_kib(rs.get("job_hwm_kib", 0)),
                        " from the submit" if sc.get("hwm_reset") else " (reset refused: includes the import)",
                        fmt_kib(rs.get("resumed_hwm_kib", 0))),
                     (peak < 64 * 1024) if sc["n"] >= 1000000 else None, sc.get("load")))
    else:
        rows.append(("(6) 1M-item job under 64 MiB RSS", "not measured in this run", None, None))
    return rows


def status_verdict(st):
    """met, missed, or None when the run cannot decide: the job never had
    90% of its calls in flight, or the Python poller (its own latency adds to
    the daemon's) measured above the target."""
    full = st["in_flight_start"] >= CONC * 0.9
    if st["p99_ms"] < 5 and st["errors"] == 0 and full:
        return True
    if not full or (st["poller"].startswith("Python") and st["errors"] == 0):
        return None
    return False


def issue17_section(w):
    i7 = RESULTS.get("issue17")
    w("## Issue 17 targets")
    w("")
    if not i7:
        w("Not run (`BENCH_ONLY=issue17 make bench`, or the default full run).")
        w("")
        return
    w("One run (%s, commit %s, %s): every row below was measured in it; a row from an earlier "
      "run would read \"not measured in this run\". Submit to done is timed as a user does: from "
      "sending `POST /v1/jobs` to the first `GET /v1/jobs/{id}` (polled every 20 ms) that reports "
      "the job done; the bare loop (build/bench/curl_multi) sends the bodies the daemon sent, "
      "timed from its process start to exit. \"First call\" is the first request counted by the "
      "simulator (`GET /sim/stats`, polled every 2-3 ms). CPU per call is user+sys from "
      "/proc/PID/stat, whole process (all threads), which is what the target uses; the loop "
      "thread alone is shown beside it. For (3) the 1M-item job is SIGKILLed %s items before its "
      "end, so the restarted job itself holds about a million stored calls and still has work "
      "(the worst case: its own task and call rows are what a restart reads); then medthinkd is "
      "started again on the same store, page cache warm. Rows that say \"by the issue's reference "
      "script\" come from section 9: ../shared/bench/compare.sh, the script behind the issue's own "
      "figures, run unchanged (its bare loop makes an easy handle per call and parses each reply "
      "with jansson, the baseline as the issue defines it; medthinkd polled every 0.2 s by a new "
      "curl and python3, Debian's python3 when the PATH's is a slow shim: section 9). Rows that "
      "say \"against the issue's bare loop\" run that same program (curlmulti.c, unchanged) inside "
      "section 7's rounds, paired with the daemon on the same simulator, without the script's "
      "poll. The other rows come from section 7's own bare loop, which parses nothing and reuses its "
      "handles: a stricter baseline, kept beside it." % (i7["date"], i7["commit"], i7["mode"], "{:,}".format(i7.get("kill_left", KILL_LEFT))))
    w("")
    w("| target | measured | | machine during that section |\n|---|---|---|---|")
    for tgt, meas, ok, ld in i7["rows"]:
        w("| %s | %s | %s | %s |" % (tgt, meas, "not decided" if ok is None else verdict(ok),
                                     "" if not ld else "%s (others %.2f cores, load %.1f -> %.1f)"
                                     % ("LOADED" if ld.get("loaded") else "quiet", ld["other_cores"],
                                        ld["load_start"][0], ld["load_end"][0])))
    w("")
    met = sum(1 for r in i7["rows"] if r[2])
    w("%d of %d targets met.%s" % (met, len(i7["rows"]),
                                   " **Some sections ran on a loaded machine: rerun those on a quiet one "
                                   "before deciding.**" if i7.get("loaded") else ""))
    w("")


def issue17_finish(total):
    m = machine()
    rows = issue17_rows()
    loaded = any(r[3] and r[3].get("loaded") for r in rows)
    RESULTS["issue17"] = {"rows": rows, "date": m["date"], "commit": m["commit"], "run_id": RUN_ID,
                          "mode": "BENCH_ONLY=" + ",".join(ONLY) if ONLY else "full run",
                          "kill_left": KILL_LEFT, "loaded": loaded, "total_s": round(total)}
    L = []
    issue17_section(L.append)
    sys.stdout.write("\n".join(L) + "\n")
    sys.stdout.flush()


# Sections of docs/PERFORMANCE.md each benchmark writes (a partial run
# replaces only these in the existing file).
SECTION_OF = {"throughput": ["## 1."], "ratelimit": ["## 2."], "scale": ["## 3.", "## 4."],
              "pool": ["## 5."], "selection": ["## 6."], "e2e": ["## 7."], "status": ["## 8."],
              "reference": ["## 9."],
              "profile": ["## Profile"], "issue17": ["## Issue 17"]}


def section_key(head):
    m = re.match(r"(## \d+\.)", head)
    if m:
        return m.group(1)
    for k in ("## Issue 17", "## Profile", "## Findings", "## Machine"):
        if head.startswith(k):
            return k
    return head


def split_sections(lines):
    """[(key, lines)]: the text before the first `## ` has key ''."""
    out = [("", [])]
    for l in lines:
        if l.startswith("## "):
            out.append((section_key(l), [l]))
        else:
            out[-1][1].append(l)
    return out


def merge_report(path, new_lines, ran):
    """A partial run: the sections of what ran (and the machine, the issue 17
    table, the findings) come from new_lines, every other section stays as
    the existing file has it."""
    if not os.path.exists(path):
        return new_lines
    old = dict(split_sections(open(path).read().split("\n")))
    keep = {"", "## Machine", "## Findings"}
    for k in ran:
        keep.update(SECTION_OF.get(k, []))
    out = []
    for key, lines in split_sections(new_lines):
        out += lines if key in keep or key not in old else old[key]
    return out


def self_check():
    """The report code on made-up results, and the Python poller against a
    tiny HTTP server on a unix socket: no daemon, a second or two. Exit 0 and
    `ok - ...` lines, or `not ok - ...`."""
    import socketserver
    fails = []

    def check(ok, name):
        print("%s - bench self-check: %s" % ("ok" if ok else "not ok", name))
        if not ok:
            fails.append(name)

    ld = {"load_start": [0.1, 0.2, 0.3], "load_end": [1.5, 0.5, 0.4], "wall_s": 10.0,
          "other_cores": 0.05, "steal_cores": 0.0, "loaded": False}

    def side(ips, cpu, loop):
        return {"items": 20000, "state": "done", "failed": 0, "wall_s": 20000 / ips, "calls": 20000,
                "items_per_s": ips, "calls_per_s": ips, "cpu_ms_per_call": cpu, "loop_cpu_ms_per_call": loop,
                "first_call_s": 0.01, "max_rss_kib": 40000, "cpu_s": cpu * 20, "cpu_s_main": loop * 20}
    sizes = []
    for n in (20000, 200000):
        rounds = [{"a": side(4600, 0.1, 0.08), "b": side(5000, 0.08, 0.07), "r": side(4800, 0.075, 0.07)},
                  {"a": side(4500, 0.11, 0.09), "b": side(4900, 0.08, 0.07),
                   "r": side(4700, 0.07 if n == 20000 else 0.065, 0.07)}]
        for rr in rounds:
            rr["a"]["items"] = rr["b"]["items"] = n
            rr["a"]["wall_s"] = n / rr["a"]["items_per_s"]
            rr["b"]["wall_s"] = n / rr["b"]["items_per_s"] + 0.3
            rr["ratio"] = rr["a"]["items_per_s"] / rr["b"]["items_per_s"]
            rr["cpu_ratio"] = rr["a"]["cpu_ms_per_call"] / rr["b"]["cpu_ms_per_call"]
            rr["loop_cpu_ratio"] = rr["a"]["loop_cpu_ms_per_call"] / rr["b"]["loop_cpu_ms_per_call"]
            rr["ratio_r"] = rr["a"]["calls_per_s"] / rr["r"]["calls_per_s"]
            rr["cpu_ratio_r"] = rr["a"]["cpu_ms_per_call"] / rr["r"]["cpu_ms_per_call"]
        med = {k: {f: median([rr[k][f] for rr in rounds]) for f in
                   ("wall_s", "items_per_s", "calls_per_s", "cpu_ms_per_call", "loop_cpu_ms_per_call",
                    "first_call_s", "max_rss_kib")}
               for k in ("a", "b")}
        for k in ("a", "b"):
            med[k]["items"] = n
        med["r"] = {f: median([rr["r"][f] for rr in rounds]) for f in ("wall_s", "calls_per_s", "cpu_ms_per_call")}
        sizes.append({"n": n, "rounds": rounds, "a": rounds[0]["a"], "b": rounds[0]["b"], "med": med, "c": None,
                      "ratio_r": median([r["ratio_r"] for r in rounds]),
                      "cpu_ratio_r": median([r["cpu_ratio_r"] for r in rounds]),
                      "ratio": median([r["ratio"] for r in rounds]),
                      "cpu_ratio": median([r["cpu_ratio"] for r in rounds]),
                      "loop_cpu_ratio": median([r["loop_cpu_ratio"] for r in rounds])})
    e = {"sizes": sizes, "rounds": 2, "run_id": RUN_ID, "load": ld, "load_before": [0, 0, 0], "load_after": [0, 0, 0]}
    for k in ("a", "b"):
        e["fixed_" + k], e["marginal_" + k] = fixed_marginal([s["med"][k] for s in sizes])
    RESULTS["e2e"] = e
    RESULTS["status"] = {"n": 60000, "clients": 50, "seconds": 10, "run_id": RUN_ID, "poller": "build/bench/status_poll (C)",
                         "count": 90000, "p50_ms": 1.0, "p99_ms": 3.5, "max_ms": 9.0, "errors": 0,
                         "in_flight_start": 512, "in_flight_end": 512, "poll_s": 10.0, "load": ld,
                         "calls_per_s_during": 4000, "daemon_cpu_s": 9, "loop_cpu_s": 7, "job_state": "done",
                         "job_wall_s": 15}
    RESULTS["scale"] = {"n": 1000000, "run_id": "earlier-run", "file_bytes": 4.6e8, "page_cache_kib": 16000,
                        "import": {"items": 1000000, "s": 30, "items_per_s": 33000, "mb_per_s": 15,
                                   "daemon_peak_rss_kib": 150000}, "first_call_s": 0.02, "submit_s": 0.01}
    # Sections that did not run keep the existing file's text.
    old = os.path.join(T, "old.md")
    with open(old, "w") as f:
        f.write("# medthink performance\n\n## Machine\n\nold machine\n\n## 5. Student pool\n\nOLD POOL TEXT\n\n"
                "## Findings: x\n\nold findings\n")
    ref_out = ("curlmulti calls=20000 failed=0 wall=4.12s rate=4853/s cpu=2.02s cpu_per_1k=0.101s maxrss=19116KB\n"
               "aiohttp+sqlite skipped rate=0/s cpu_per_1k=0\n"
               "medthinkd calls=20000 state=done stored_calls=20000 wall=5.19s rate=%d/s cpu=3.64s "
               "cpu_per_1k=%.3fs maxrss=49192KB\n")
    r1, r2 = ref_parse(ref_out % (4500, 0.140)), ref_parse(ref_out % (3900, 0.182))
    check("aiohttp+sqlite" not in r1 and r1["medthinkd"]["rate"] == 4500 and r1["curlmulti"]["cpu_per_1k"] == 0.101
          and r1["medthinkd"]["state"] == "done", "compare.sh lines parsed, a skipped runner left out")

    def ref_size(n, x):
        runs = [{"medthinkd": x["medthinkd"], "curlmulti": x["curlmulti"],
                 "ratio": round(x["medthinkd"]["rate"] / x["curlmulti"]["rate"], 4),
                 "cpu_ratio": round(x["medthinkd"]["cpu_per_1k"] / x["curlmulti"]["cpu_per_1k"], 3)}]
        return {"n": n, "runs": runs, "ratio": runs[0]["ratio"], "cpu_ratio": runs[0]["cpu_ratio"]}
    RESULTS["reference"] = {"run_id": RUN_ID, "script": "../shared/bench/compare.sh",
                            "sizes": [ref_size(20000, r1), ref_size(200000, r2)]}
    # A run with the PATH's (slow) python3 is shown, not counted.
    slow = dict(RESULTS["reference"]["sizes"][0]["runs"][0], ratio=0.7512, as_found=True,
                poll_python3="/x/shims/python3")
    RESULTS["reference"]["sizes"][0]["runs"].append(slow)
    RESULTS["reference"].update(python3_path="/x/shims/python3", python3_start_s=0.41,
                                poll_python3="/usr/bin/python3", poll_python3_start_s=0.05)
    issue17_finish(1.0)
    rows = RESULTS["issue17"]["rows"]
    check("median of 1 runs: 0.927" in rows[3][1] and "with it, 0.751" in rows[3][1]
          and "(runs: 1.39)" in rows[9][1],
          "(1), (4) by the reference script: the PATH's-python3 run shown beside, not in the medians")
    check(len(rows) == 12, "twelve target rows: (1) and (4) by our loop, the issue's loop and its script")
    check(rows[0][2] is True and rows[1][2] is True, "(1) met at both sizes with ratios >= 0.9")
    check(rows[2][2] is True and "0.958 x" in rows[2][1], "(1) against the issue's loop in the same rounds")
    check(rows[3][2] is True and rows[4][2] is False, "(1) by the reference script: 0.927 met, 0.804 missed")
    check(rows[5][2] is None and "not measured in this run" in rows[5][1],
          "a result of an earlier run counts as not measured")
    check(rows[10][2] is True and rows[7][2] is True, "(4) and (5) from the made-up numbers")
    check(rows[8][2] is False and "1.45 x" in rows[8][1] and "1.51 x" in rows[8][1],
          "(4) against the issue's loop: missed when one size is over 1.5 x")
    check(rows[9][2] is False and "1.39 x" in rows[9][1] and "1.80 x" in rows[9][1],
          "(4) by the reference script: missed when one size is over 1.5 x")
    write_report(old, 1.0, [], ran=["e2e", "status", "issue17", "reference"])
    text = open(old).read()
    check("OLD POOL TEXT" in text, "a partial run keeps the sections it did not run")
    check("## Issue 17 targets" in text and "## 7. End to end" in text and "## 8. Status under load" in text
          and "## 9. The issues' reference script" in text and "| 200,000 | 1 | - | 3900 |" in text,
          "a partial run writes its own sections")
    check(text.count("## Machine") == 1 and "old machine" not in text, "the machine section is this run's")
    check("Load average (1/5/15 min)" in text, "load of each section in the report")

    # The Python poller against a fake daemon: keep-alive GETs, a job that ends.
    sock = os.path.join(T, "fake.sock")
    served = [0]

    class H(socketserver.StreamRequestHandler):
        def handle(self):
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                while self.rfile.readline() not in (b"\r\n", b""):
                    pass
                served[0] += 1
                body = b'{"state": "%s"}' % (b"done" if served[0] > 400 else b"running")
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                                 b"Connection: keep-alive\r\n\r\n%s" % (len(body), body))

    class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True
    srv = S(sock, H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    r = py_status_poll(sock, "job_1", 4, 20)
    srv.shutdown()
    srv.server_close()
    check(r["count"] >= 400 and r["errors"] == 0 and r["p99_ms"] >= r["p50_ms"] > 0,
          "Python poller: %d answers, %d errors, stops when the job ends" % (r["count"], r["errors"]))
    shutil.rmtree(T, ignore_errors=True)
    return 1 if fails else 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--self-check":
        return self_check()
    if len(sys.argv) > 1 and sys.argv[1] == "--report-only":
        # Re-render docs/PERFORMANCE.md from build/bench/results.json (after
        # editing bench/FINDINGS.md), without running anything.
        saved = json.load(open(os.path.join(BUILD, "bench", "results.json")))
        RESULTS.update(saved["results"])
        NOTES.extend(saved.get("notes", []))
        i7 = RESULTS.get("issue17")
        if i7 and i7.get("run_id"):
            # The targets table again from that run's results, by this code.
            global RUN_ID
            RUN_ID = i7["run_id"]
            i7["rows"] = issue17_rows()
            i7["loaded"] = any(r[3] and r[3].get("loaded") for r in i7["rows"])
        out = os.environ.get("BENCH_OUT", os.path.join(TOP, "docs", "PERFORMANCE.md"))
        # A partial run's file is merged again: the other sections stay.
        ONLY[:] = saved.get("only") or []
        write_report(out, saved["total_s"], saved["errors"], saved.get("machine"),
                     ran=saved.get("ran") if saved.get("only") else None)
        shutil.rmtree(T, ignore_errors=True)
        return 0
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    errors = []
    for exe in (os.path.join(BIN, "medthinkd"), os.path.join(BIN, "medthink-sim"),
                os.path.join(BUILD, "bench", "curl_multi"),
                os.path.join(BUILD, "bench", "select_cost") if want("selection") else None):
        if exe is None:
            continue
        if not os.access(exe, os.X_OK):
            log("missing %s: run `make bench` (it builds everything first)" % exe)
            return 1
    gen = None
    big = os.path.join(T, "big.jsonl")
    ran = []
    try:
        la = os.getloadavg()
        log("run %s: BENCH_ONLY=%s, load average %.2f %.2f %.2f at start"
            % ((RUN_ID, ",".join(ONLY) or "(all)") + la))
        if la[0] > (os.cpu_count() or 2) * 0.5:
            NOTES.append("load average %.2f %.2f %.2f when the run started (%d cores): the machine "
                         "was busy before this run began" % (la + (os.cpu_count() or 2,)))
            log("  " + NOTES[-1])
        if want("scale"):
            gen = spawn([PY, os.path.join(TOP, "bench", "gen_items.py"), str(SCALE_N), big,
                         "--prefix", "m-"], "gen_items")
            if "issue17" in ONLY or not want("throughput"):
                # Nothing measured runs beside the generator.
                gen.wait()
        steps = [("throughput", bench_throughput), ("ratelimit", bench_ratelimit),
                 ("scale", lambda: bench_scale(big, gen)), ("pool", bench_pool),
                 ("selection", bench_selection), ("e2e", bench_e2e), ("status", bench_status),
                 ("reference", bench_reference)]
        if "issue17" in ONLY:  # the sensitive ratios first, then the 1M job
            steps = ([s for s in steps if s[0] in ("e2e", "reference", "status")] +
                     [s for s in steps if s[0] == "scale"])
        for name, fn in steps:
            if not want(name):
                continue
            sect = sect_begin(name)
            try:
                fn()
                ran.append(name)
                if name == "throughput" and "profile" in RESULTS:
                    ran.append("profile")
            except Exception as e:
                log("%s failed: %s" % (name, e))
                errors.append("%s: %s" % (name, e))
            ld = sect_end(sect)
            if isinstance(RESULTS.get(name), dict):
                RESULTS[name]["load"] = ld
        total = time.monotonic() - T_START
        if want("issue17") or "issue17" in ONLY:
            issue17_finish(total)
            ran.append("issue17")
        os.makedirs(os.path.join(BUILD, "bench"), exist_ok=True)
        rj = os.path.join(BUILD, "bench", "results.json")
        if ONLY and os.path.exists(rj):
            # A partial run keeps the saved results of the benchmarks it skipped.
            try:
                RESULTS.update({k: v for k, v in json.load(open(rj))["results"].items() if k not in RESULTS})
            except (ValueError, KeyError, OSError):
                pass
        with open(rj, "w") as f:
            json.dump({"results": RESULTS, "errors": errors, "total_s": total, "notes": NOTES,
                       "machine": machine(), "only": ONLY, "ran": ran}, f, indent=1)
        out = os.environ.get("BENCH_OUT", os.path.join(TOP, "docs", "PERFORMANCE.md"))
        write_report(out, total, errors, ran=ran if ONLY else None)
        log("wrote %s (%.0f s)" % (out, total))
    finally:
        cleanup()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
