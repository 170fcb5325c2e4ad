#!/usr/bin/python3
"""Where a stage-one call's writes go in SQLite: the WAL frames of a running
job, by b-tree (table or index), per call and per commit.

    python3 bench/wal_pages.py [N]      (N items, default 20000)

Runs bench/bench.py's setup (the simulator at latency 100 ms, 512 in flight,
a fresh daemon and store), submits a stage-one job of N items and, once half
of its calls are sent, holds a read transaction on the store (so no
checkpoint restarts the WAL meanwhile), copies the WAL file and reads which
b-tree owns each page (SQLite's dbstat, in that same snapshot). Every frame
written since a quarter of the calls were sent (the WAL's whole current cycle
if it restarted in between) is counted against its page's owner; the calls in
that window are the distinct call rows on the calls table's leaf frames.
"frames" is what the writer wrote (each a 4 KiB page plus a 24-byte header);
"distinct" is what a checkpoint of that window copies into the database.

Prints a table, then one JSON line (the same numbers). Environment: BIN
(bin), MT_WAL_PAGES_KEEP=DIR keeps the WAL copy there.
"""
import collections
import json
import os
import shutil
import sqlite3
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BENCH_ONLY", "none")
import bench as B  # noqa: E402


def varint(buf, i):
    """SQLite's big-endian varint at buf[i]: (value, next index)."""
    v = 0
    for k in range(8):
        c = buf[i + k]
        v = (v << 7) | (c & 0x7F)
        if c < 0x80:
            return v, i + k + 1
    return (v << 8) | buf[i + 8], i + 9


def leaf_rowids(page):
    """Rowids of a table leaf page (type 13); [] for any other page."""
    if not page or page[0] != 13:
        return []
    n = struct.unpack(">H", page[3:5])[0]
    out = []
    for c in range(n):
        off = struct.unpack(">H", page[8 + 2 * c:10 + 2 * c])[0]
        if off + 2 > len(page):
            break
        _, j = varint(page, off)      # payload size
        rowid, _ = varint(page, j)
        out.append(rowid)
    return out


def wal_frames(path):
    """The WAL's current cycle up to its last commit frame: ([(page number,
    frame data, commit?)], page size, salts)."""
    data = open(path, "rb").read()
    if len(data) < 32:
        return [], 0, b""
    magic, _, psz, _, s1, s2 = struct.unpack(">6I", data[:24])
    if magic not in (0x377F0682, 0x377F0683):
        raise SystemExit("wal_pages: %s is not a WAL file" % path)
    frames, last_commit, off = [], 0, 32
    while off + 24 + psz <= len(data):
        pg, size_after, f1, f2 = struct.unpack(">4I", data[off:off + 16])
        if (f1, f2) != (s1, s2):
            break
        frames.append((pg, data[off + 24:off + 24 + psz], size_after != 0))
        if size_after:
            last_commit = len(frames)
        off += 24 + psz
    return frames[:last_commit], psz, data[16:24]


def wal_mark(path):
    """(salts, committed frames) of the WAL file now."""
    frames, _, salts = wal_frames(path)
    return salts, len(frames)


def snapshot(db, keep):
    """Copies the WAL while a read transaction holds it, and returns the
    copy's path and {page: b-tree name} from dbstat in the same snapshot."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, isolation_level=None)
    try:
        con.execute("BEGIN")
        con.execute("SELECT count(*) FROM jobs").fetchone()  # the read transaction starts here
        dst = os.path.join(keep, "medthink.db-wal")
        shutil.copyfile(db + "-wal", dst)
        owner = {p: name for name, p in con.execute("SELECT name, pageno FROM dbstat")}
        con.execute("COMMIT")
    finally:
        con.close()
    return dst, owner


def main():
    try:
        n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    except ValueError:
        n = 0
    if n < 100:
        print("wal_pages: N must be a number of items, at least 100 (got %r)"
              % (sys.argv[1] if len(sys.argv) > 1 else ""), file=sys.stderr)
        return 2
    try:
        return measure(n)
    finally:
        B.cleanup()


def measure(n):
    keep = os.environ.get("MT_WAL_PAGES_KEEP") or os.path.join(B.T, "walcopy")
    os.makedirs(keep, exist_ok=True)
    sim = B.Sim("wp", "--latency-ms", str(B.LATENCY_MS))
    items = os.path.join(B.T, "items.jsonl")
    B.gen_items(n, items, "wp-")
    d = B.Daemon("wp", {"sim": (sim, {})})
    try:
        d.start()
        ds, _ = d.import_file(items, "wp")
        sim.reset()
        job = d.submit(ds["id"], "sim", "wp")
        deadline = time.monotonic() + 600
        mark = None
        for part in (4, 2):
            while sim.stats()["requests_total"] < n // part:
                if time.monotonic() > deadline:
                    raise SystemExit("wal_pages: the job sent %d calls in 600 s"
                                     % sim.stats()["requests_total"])
                time.sleep(0.01)
            if part == 4:
                mark = wal_mark(d.db + "-wal")
        wal, owner = snapshot(d.db, keep)
        d.wait_done(job, poll=0.2)
    finally:
        if d.p:
            d.stop()
        sim.stop()
    frames, psz, salts = wal_frames(wal)
    # Only what the job wrote between a quarter and half of its calls (not
    # the import before it): the frames after the first mark, or the whole
    # cycle when the WAL restarted in between.
    if mark and salts == mark[0]:
        frames = frames[mark[1]:]
    commits = sum(1 for f in frames if f[2])
    by = collections.Counter()
    pages = collections.defaultdict(set)
    calls = set()
    for pg, body, _ in frames:
        name = owner.get(pg, "(freed or new)")
        by[name] += 1
        pages[name].add(pg)
        if name == "calls":
            calls.update(leaf_rowids(body))
    ncalls = max(1, len(calls))
    rows = [{"btree": k, "frames": v, "frames_per_call": round(v / ncalls, 3),
             "distinct_pages": len(pages[k]),
             "distinct_per_call": round(len(pages[k]) / ncalls, 3)}
            for k, v in by.most_common()]
    total = {"frames": len(frames), "commits": commits, "calls": len(calls),
             "calls_per_commit": round(len(calls) / max(1, commits), 1),
             "frames_per_call": round(len(frames) / ncalls, 3),
             "distinct_per_call": round(sum(len(p) for p in pages.values()) / ncalls, 3),
             "page_size": psz, "items": n}
    print("WAL window: %d frames in %d commits; %d calls (%.1f a commit); page %d bytes"
          % (len(frames), commits, len(calls), total["calls_per_commit"], psz))
    print("%-24s %8s %9s %9s %9s" % ("b-tree", "frames", "per call", "distinct", "per call"))
    for r in rows:
        print("%-24s %8d %9.3f %9d %9.3f" % (r["btree"], r["frames"], r["frames_per_call"],
                                            r["distinct_pages"], r["distinct_per_call"]))
    print("%-24s %8d %9.3f %9s %9.3f" % ("total", len(frames), total["frames_per_call"], "",
                                        total["distinct_per_call"]))
    print(json.dumps({"total": total, "btrees": rows}))
    return 0 if frames and calls else 1


if __name__ == "__main__":
    sys.exit(main())
