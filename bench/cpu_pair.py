#!/usr/bin/python3
"""CPU per call of two (or more) medthinkd builds, paired: the same stage-one
job of N items against one simulator (bench/bench.py's setup: latency 100 ms,
512 in flight), each build in turn, ROUNDS times, so a machine busy with other
work weighs on every build alike.

    python3 bench/cpu_pair.py OLD/medthinkd NEW/medthinkd

Environment: N (20000 items), ROUNDS (3), PERF=prefix (perf record of the
first round of each build, to PREFIX.0, PREFIX.1, ...). Prints one line per
job (wall, calls, process CPU ms per call and the event-loop thread's share
of it, load average) and a summary line per build.
"""
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


def one(binp, tag, sim, items, perf_out):
    d = B.Daemon(tag, {"sim": (sim, {})})
    env = dict(os.environ)
    env.pop("MEDTHINK_SOCKET", None)
    d.p = B.spawn([binp, "-c", d.conf], "medthinkd", stderr=open(d.log, "a"), env=env)
    d.pid = d.p.pid
    d.wait_health()
    try:
        ds, _ = d.import_file(items, "it")
        sim.reset()
        pr = None
        if perf_out:
            pr = subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384",
                                   "-p", str(d.pid), "-o", perf_out],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        th0 = B.thread_cpu(d.pid)
        c0 = d.cpu()
        t0 = time.monotonic()
        job = d.submit(ds["id"], "sim", "j")
        t1, st = d.wait_done(job, poll=0.05)
        cpu = d.cpu() - c0
        loop = B.thread_cpu(d.pid)[d.pid][1] - th0[d.pid][1]
        if pr:
            pr.send_signal(2)
            pr.wait()
        calls = sim.stats()["requests_total"]
        return {"wall_s": round(t1 - t0, 2), "calls": calls, "state": st.get("state"),
                "cpu_ms_per_call": round(cpu * 1000 / max(1, calls), 4),
                "loop_ms_per_call": round(loop * 1000 / max(1, calls), 4),
                "load": round(os.getloadavg()[0], 2)}
    finally:
        d.stop()


def main():
    bins = sys.argv[1:]
    if not bins:
        print(__doc__, file=sys.stderr)
        return 2
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
        print("%s: cpu ms/call %s mean %.4f; loop thread %s" %
              (b, cpu, sum(cpu) / len(cpu), [x["loop_ms_per_call"] for x in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
