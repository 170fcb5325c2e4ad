#!/usr/bin/python3
"""Benchmark baseline (c): what users write instead of medthinkd.

A naive asyncio + aiohttp script (Debian's python3-aiohttp): POST each
request body to the endpoint with at most CONCURRENCY in flight (an
asyncio.Semaphore), and store each reply in SQLite with an INSERT and a
commit per reply (the sqlite3 module's defaults plus journal_mode=WAL: without
WAL the per-commit journal fsyncs halve its rate again).

    aiohttp_sqlite.py URL BODIES.jsonl DB [CONCURRENCY]

Prints one JSON object: calls, ok, errors, wall_s, cpu_s (user+sys of this
process from the first request to the last commit), calls_per_s,
cpu_s_per_1k.
"""
import asyncio
import json
import resource
import sqlite3
import sys
import time

import aiohttp


def cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def run(url, bodies, db_path, conc):
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")  # the one tweak everyone applies
    db.execute("CREATE TABLE IF NOT EXISTS calls(id INTEGER PRIMARY KEY, request TEXT, "
               "reply TEXT, status INTEGER, created_at REAL)")
    db.commit()
    sem = asyncio.Semaphore(conc)
    stats = {"ok": 0, "errors": 0}
    conn = aiohttp.TCPConnector(limit=conc)
    timeout = aiohttp.ClientTimeout(total=120)

    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        async def one(body):
            async with sem:
                try:
                    async with session.post(url, data=body,
                                            headers={"Content-Type": "application/json"}) as r:
                        reply = await r.text()
                        status = r.status
                except Exception:  # a naive script counts and moves on
                    stats["errors"] += 1
                    return
                db.execute("INSERT INTO calls(request, reply, status, created_at) "
                           "VALUES (?, ?, ?, ?)", (body, reply, status, time.time()))
                db.commit()
                if status == 200:
                    stats["ok"] += 1
                else:
                    stats["errors"] += 1

        t0, c0 = time.monotonic(), cpu_s()
        await asyncio.gather(*(one(b) for b in bodies))
        wall, cpu = time.monotonic() - t0, cpu_s() - c0
    db.close()
    n = len(bodies)
    return {"calls": n, "ok": stats["ok"], "errors": stats["errors"], "wall_s": round(wall, 4),
            "cpu_s": round(cpu, 4), "calls_per_s": round(n / wall, 1) if wall > 0 else 0,
            "cpu_s_per_1k": round(cpu * 1000 / n, 5) if n else 0, "concurrency": conc}


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    url, path, db_path = argv[1], argv[2], argv[3]
    conc = int(argv[4]) if len(argv) > 4 else 512
    with open(path) as f:
        bodies = [l.rstrip("\n") for l in f if l.strip()]
    res = asyncio.run(run(url, bodies, db_path, conc))
    print(json.dumps(res))
    return 0 if res["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
