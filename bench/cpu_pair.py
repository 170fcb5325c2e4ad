#!/usr/bin/python3
"""CPU per call of two (or more) medthinkd builds, paired: the same stage-one
job of N items against one simulator (bench/bench.py's setup: latency 100 ms,
512 in flight), each build in turn, ROUNDS times, so a machine busy with other
work weighs on every build alike.

    python3 bench/cpu_pair.py OLD/medthinkd NEW/medthinkd

An argument ref:PATH is the issue's reference bare loop, PATH built from
../shared/bench/curlmulti.c (gcc -O2 curlmulti.c -lcurl -ljansson -luv):
N calls of its own body against the same simulator.

Environment: N (20000 items), ROUNDS (3), PERF=prefix (perf record of the
first round of each build, to PREFIX.0, PREFIX.1, ...). Prints one line per
job (wall, calls, process CPU ms per call and the event-loop thread's share
of it, load average) and a summary line per build.

GROW=20000,200000,... instead runs one daemon of the first build, with
jobs of those sizes one after another on the same store, and prints each
job's CPU per call by thread: how the cost of a call changes as the store
grows (bench.py's section 7 keeps one daemon for all its rounds); with
PERF=prefix each job is recorded to PREFIX.0, PREFIX.1, ...
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BENCH_ONLY", "none")
import bench as B  # noqa: E402

N = int(os.environ.get("N", "20000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
PERF = os.environ.get("PERF")


def ref_loop(binp, sim):
    """The issue's reference bare loop (../shared/bench/curlmulti.c, built by
    the caller): N posts of its fixed body, 512 in flight, to the same
    simulator; its own getrusage CPU (process start included)."""
    sim.reset()
    t0 = time.monotonic()
    out = subprocess.run([binp, sim.url() + "/chat/completions", str(N), str(B.CONC)],
                         capture_output=True, text=True, timeout=3600)
    m = dict(kv.split("=", 1) for kv in out.stdout.split()[1:] if "=" in kv)
    calls = int(m.get("calls", 0))
    return {"wall_s": round(time.monotonic() - t0, 2), "calls": calls,
            "failed": int(m.get("failed", -1)),
            "cpu_ms_per_call": round(float(m.get("cpu", "0s").rstrip("s")) * 1000 / max(1, calls), 4),
            "loop_ms_per_call": None, "load": round(os.getloadavg()[0], 2)}


def daemon_start(binp, tag, sim):
    """binp's medthinkd on a fresh store, the simulator as its teacher
    "sim"; returns the bench.Daemon once it answers /v1/health."""
    d = B.Daemon(tag, {"sim": (sim, {})})
    d.start(binary=binp)
    return d


def perf_start(pid, out):
    """perf record of pid to out (stopped with SIGINT), or None without out."""
    if not out:
        return None
    pr = subprocess.Popen(["perf", "record", "-F", os.environ.get("PERF_F", "499"),
                           "--call-graph", "dwarf,16384", "-p", str(pid), "-o", out],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return pr


def measure_job(d, sim, dataset, name, perf_out):
    """Submits a stage-one job of dataset on d and waits for it: wall time,
    calls (the simulator's count), process CPU and each thread's, per call."""
    sim.reset()
    pr = perf_start(d.pid, perf_out)
    th0 = B.thread_cpu(d.pid)
    c0 = d.cpu()
    t0 = time.monotonic()
    job = d.submit(dataset, "sim", name)
    t1, st = d.wait_done(job, poll=0.05)
    cpu = d.cpu() - c0
    th1 = B.thread_cpu(d.pid)
    if pr:
        pr.send_signal(2)
        pr.wait()
    calls = sim.stats()["requests_total"]
    return {"wall_s": round(t1 - t0, 2), "calls": calls, "state": st.get("state"),
            "cpu_ms_per_call": round(cpu * 1000 / max(1, calls), 4),
            "loop_ms_per_call": round((th1[d.pid][1] - th0[d.pid][1]) * 1000 / max(1, calls), 4),
            # Every thread's share, by name (the writer, status front, checkpointer...).
            "threads_ms_per_call": per_thread(th0, th1, calls),
            "load": round(os.getloadavg()[0], 2)}


def one(binp, tag, sim, items, perf_out):
    if binp.startswith("ref:"):
        return ref_loop(binp[4:], sim)
    d = daemon_start(binp, tag, sim)
    try:
        ds, _ = d.import_file(items, "it")
        return measure_job(d, sim, ds["id"], "j", perf_out)
    finally:
        d.stop()


def per_thread(before, after, calls):
    """CPU ms per call of each thread name (the loop is "medthinkd")."""
    per = {}
    for tid, (name, sec) in after.items():
        key = name.split("[")[0]
        per[key] = per.get(key, 0.0) + sec - before.get(tid, (name, 0.0))[1]
    return {k: round(v * 1000 / max(1, calls), 4) for k, v in sorted(per.items())}


def grow(binp, sizes):
    """Jobs of the given sizes, in order, on one daemon and store."""
    sim = B.Sim("grow", "--latency-ms", str(B.LATENCY_MS))
    d = None
    stored = 0
    try:
        d = daemon_start(binp, "grow", sim)
        for r, n in enumerate(sizes):
            items = os.path.join(B.T, "items%d.jsonl" % r)
            B.gen_items(n, items, "g%d-" % r)
            ds, _ = d.import_file(items, "g%d" % r)
            m = measure_job(d, sim, ds["id"], "g%d" % r, "%s.%d" % (PERF, r) if PERF else None)
            stored += m["calls"]
            print(json.dumps(dict({"items": n, "calls_stored_after": stored}, **m)), flush=True)
    finally:
        if d:
            d.stop()
        sim.stop()
        B.cleanup()
    return 0


def main():
    bins = sys.argv[1:]
    if not bins:
        print(__doc__, file=sys.stderr)
        return 2
    if os.environ.get("GROW"):
        try:
            sizes = [int(x) for x in os.environ["GROW"].split(",")]
        except ValueError:
            sizes = []
        if not sizes or min(sizes) < 1:
            print("cpu_pair: GROW must be item counts separated by commas, such as "
                  "20000,200000 (got %r)" % os.environ["GROW"], file=sys.stderr)
            return 2
        return grow(bins[0], sizes)
    sim = B.Sim("pair", "--latency-ms", str(B.LATENCY_MS))
    items = os.path.join(B.T, "items.jsonl")
    B.gen_items(N, items, "p-")
    res = {b: [] for b in bins}
    try:
        for r in range(ROUNDS):
            for i, b in enumerate(bins):
                perf_out = "%s.%d" % (PERF, i) if PERF and r == 0 else None
                row = one(b, "d%d_%d" % (i, r), sim, items, perf_out)
                res[b].append(row)
                print(b, r, row, flush=True)
    finally:
        sim.stop()
        B.cleanup()
    for b, rows in res.items():
        cpu = [x["cpu_ms_per_call"] for x in rows]
        print("%s: cpu ms/call %s mean %.4f; event-loop thread %s" %
              (b, cpu, sum(cpu) / len(cpu), [x["loop_ms_per_call"] for x in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
