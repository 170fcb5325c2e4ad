#!/bin/sh
# The measuring tools behind docs/PERFORMANCE.md's findings, on small jobs
# against the simulator (a few seconds each):
# - bench/wal_pages.py: the WAL frames of a running stage-one job by b-tree;
#   the window has commits and calls, and each call's row costs about one
#   page of its own (a ~3 KB calls row on a 4 KiB page), with index frames.
# - bench/cpu_pair.py with GROW: jobs one after another on one daemon, CPU
#   per call by thread, every call of every job stored.
# - bench/schema_cost.c: the store's write pattern on raw SQLite, per schema
#   variant; the counts it prints (frames, pages) follow from the schema.
. "$(dirname "$0")/lib.inc"

out=$(cd "$top" && BIN="$BIN" python3 bench/wal_pages.py 3000 2>&1)
rc=$?
expect_eq "wal_pages exits 0" "$rc" 0
expect_match "wal_pages prints the window" "$out" '^WAL window: [0-9]+ frames in [1-9][0-9]* commits; [1-9][0-9]* calls'
json=$(printf '%s\n' "$out" | grep '^{"total"' | tail -n 1)
check "wal_pages: the calls row is about a page a call, the hash index has frames" \
  python3 -c '
import json, sys
d = json.loads(sys.argv[1])
rows = {r["btree"]: r for r in d["btrees"]}
c = rows["calls"]["frames_per_call"]
assert 0.8 <= c <= 1.5, ("calls frames per call", c)
assert rows["calls_hash"]["frames"] > 0, rows.get("calls_hash")
assert abs(sum(r["frames"] for r in d["btrees"]) - d["total"]["frames"]) == 0
' "$json"
out=$(cd "$top" && BIN="$BIN" GROW=1500,2500 python3 bench/cpu_pair.py "$BIN/medthinkd" 2>&1)
rc=$?
expect_eq "cpu_pair GROW exits 0" "$rc" 0
check "cpu_pair GROW: one line a job, its calls stored, CPU by thread" \
  python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines() if l.startswith("{")]
assert [r["items"] for r in rows] == [1500, 2500], rows
assert all(r["state"] == "done" and r["calls"] >= r["items"] for r in rows), rows
assert rows[1]["calls_stored_after"] == rows[0]["calls"] + rows[1]["calls"], rows
assert all(r["threads_ms_per_call"]["medthinkd"] > 0 and r["threads_ms_per_call"]["mt-writer"] > 0
           for r in rows), rows
' "$out"
out=$(cd "$top" && python3 bench/wal_pages.py 12x 2>&1)
expect_eq "wal_pages: a bad N exits 2" "$?" 2
expect_match "wal_pages: a bad N is named" "$out" "N must be a number of items.*'12x'"
out=$(cd "$top" && GROW=20000,x python3 bench/cpu_pair.py "$BIN/medthinkd" 2>&1)
expect_eq "cpu_pair: a bad GROW exits 2" "$?" 2
expect_match "cpu_pair: a bad GROW is named" "$out" "GROW must be item counts.*'20000,x'"
# the plain build whatever B the tests run with: it links none of our libraries
make -s -C "$top" build/bench/schema_cost >"$T/make.log" 2>&1
expect_eq "schema_cost builds" "$?" 0
sc() { "$top/build/bench/schema_cost" "$@"; }
base=$(sc 2000 "$T/sc-base" base 500 2>&1)
expect_eq "schema_cost base exits 0" "$?" 0
all=$(sc 2000 "$T/sc-all" hkey,artrow,zip 500 2>&1)
expect_eq "schema_cost hkey,artrow,zip exits 0" "$?" 0
check "schema_cost: a call row is about a page; the variants write fewer frames and pages" \
  python3 -c '
import json, sys
b, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert b["n"] == 2000 and b["pre"] == 500 and a["variant"] == "hkey,artrow,zip", (b, a)
assert 1.0 <= b["ckpt_pages_per_call"] <= 1.6, b
assert a["wal_frames_per_call"] < b["wal_frames_per_call"], (a, b)
assert a["ckpt_pages_per_call"] < 0.7 * b["ckpt_pages_per_call"], (a, b)
assert a["db_bytes_per_call"] < b["db_bytes_per_call"] / 2, (a, b)
assert b["writer_us_per_call"] > 0 and b["ckpt_us_per_call"] > 0, b
' "$base" "$all"
out=$(sc 2000 "$T/sc-bad" hkey,lz4 2>&1)
expect_eq "schema_cost: an unknown variant exits 2" "$?" 2
expect_match "schema_cost: an unknown variant is named" "$out" "unknown variant 'lz4'"
out=$(sc 2000 "$T/sc-base" base 2>&1)
expect_eq "schema_cost: an existing DIR exits 2" "$?" 2
expect_match "schema_cost: the existing DIR is named" "$out" "cannot create .*sc-base"
out=$(sc 100 "$T/sc-nosample" base 0 "$T/none.db" 2>&1)
expect_eq "schema_cost: a missing SAMPLE_DB exits 2" "$?" 2
expect_match "schema_cost: the missing SAMPLE_DB is named" "$out" "SAMPLE_DB .*none.db"
out=$(CACHE_KIB=0 sc 100 "$T/sc-cache" base 2>&1)
expect_eq "schema_cost: a bad CACHE_KIB exits 2" "$?" 2
expect_match "schema_cost: a bad CACHE_KIB is named" "$out" "CACHE_KIB must be"
exit $_failed
