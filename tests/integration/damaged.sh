#!/bin/sh
# A damaged store (issue 9): an empty or foreign medthink.db is refused at
# start with a message naming the file (only a missing file starts a new
# store); a page damaged in the middle of the file is found by the check
# that runs right after start, which pauses the running jobs and turns
# /v1/health "degraded"; `medthinkd --check-store` says the same offline.
. "$(dirname "$0")/lib.inc"

db="$T/var/medthink.db"
write_conf
mkdir -p "$T/var"

# --- an empty file is damage, not a fresh start
: >"$db"
"$BIN/medthinkd" -c "$T/medthinkd.conf" 2>"$T/empty.log"; rc=$?
expect_eq "zero-byte database: exit 1" "$rc" "1"
expect_match "zero-byte database: names the file" "$(cat "$T/empty.log")" "$db is empty \(0 bytes\)"
expect_match "zero-byte database: points at the way out" "$(cat "$T/empty.log")" "docs/operations.md"
expect_eq "zero-byte database: left as it was" "$(stat -c %s "$db")" "0"
"$BIN/medthinkd" -c "$T/medthinkd.conf" --check-store >/dev/null 2>"$T/cs.log"; rc=$?
expect_eq "--check-store on a zero-byte database: exit 1" "$rc" "1"

# --- a file that is not SQLite
head -c 200000 /dev/urandom >"$db"
"$BIN/medthinkd" -c "$T/medthinkd.conf" 2>"$T/junk.log"; rc=$?
expect_eq "garbage database: exit 1" "$rc" "1"
expect_match "garbage database: names the file" "$(cat "$T/junk.log")" "$db is not a database"
rm -f "$db"
"$BIN/medthinkd" -c "$T/medthinkd.conf" --check-store >/dev/null 2>"$T/cs.log"; rc=$?
expect_eq "--check-store without a store: exit 1" "$rc" "1"

# --- damage in the middle of the file, found after start
start_sim T --latency-ms 300 || exit 1
start_sim S --latency-ms 50 || exit 1
TEACHER_CONC=2
write_conf
start_daemon || { nok "daemon starts on a new store"; exit 1; }
"$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro >/dev/null
echo '{"name":"dmg","dataset":"gastro","kind":"stage1","teacher":"sim","seed":3,"eval_fraction":0}' >"$T/job.json"
job=$("$BIN/medthink" submit "$T/job.json")
wait_job "$job" running 30 || nok "job runs" "$(api "http://x/v1/jobs/$job")"
stop_daemon
out=$("$BIN/medthinkd" -c "$T/medthinkd.conf" --check-store 2>&1); rc=$?
expect_eq "--check-store on a sound store: exit 0" "$rc" "0"
expect_match "--check-store says sound" "$out" "sound"
# A table the daemon never reads, so only the check can find its damage;
# one of its pages in the middle of the file is overwritten.
sqlite3 "$db" "CREATE TABLE filler(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<3000) INSERT INTO filler SELECT randomblob(300) FROM n;"
psz=$(sqlite3 "$db" "PRAGMA page_size")
pg=$(sqlite3 "$db" "SELECT pageno FROM dbstat WHERE name='filler' AND pagetype='leaf' ORDER BY pageno LIMIT 1 OFFSET 20")
[ -n "$pg" ] && [ ! -s "$db-wal" ] || { nok "found a page to damage" "page [$pg]"; exit 1; }
head -c "$psz" /dev/urandom | dd of="$db" bs="$psz" seek=$((pg - 1)) conv=notrunc 2>/dev/null
out=$("$BIN/medthinkd" -c "$T/medthinkd.conf" --check-store 2>&1); rc=$?
expect_eq "--check-store on a damaged store: exit 1" "$rc" "1"
expect_match "--check-store names the file and the damage" "$out" "$db is damaged: "

start_daemon || { nok "daemon starts on a store damaged mid-file"; exit 1; }
ok "daemon starts on a store damaged mid-file (the cheap checks pass)"
i=0
until api http://x/v1/health | grep -q degraded; do
  i=$((i + 1)); [ $i -gt 300 ] && break
  sleep 0.1
done
h=$(api http://x/v1/health)
expect_match "health reports degraded" "$h" '"status": ?"degraded"'
expect_match "health gives the reason" "$h" '"reason": ?"database damaged: .*; see docs/operations.md"'
st=$(api "http://x/v1/jobs/$job")
expect_eq "the running job is paused" "$(printf '%s' "$st" | jq_py 'd["state"]')" "paused"
expect_match "with the damage as its reason" "$(printf '%s' "$st" | jq_py 'd.get("reason")')" "^database damaged: .*; see docs/operations.md$"
expect_match "the log names the file and the first error" "$(cat "$T/medthinkd.log")" "store $db is damaged: "
stop_daemon
expect_eq "the daemon stops cleanly" "$DAEMON_RC" "0"

# --- the way out of docs/operations.md, "A damaged database" (with the
# .dump variant: Debian's sqlite3 has no .recover)
cp -p "$db" "$T/kept.db"
ver=$(sqlite3 "$db" "PRAGMA user_version")
(cd "$T/var" && sqlite3 medthink.db ".dump" | sed 's/^ROLLBACK; -- due to errors$/COMMIT;/' | sqlite3 recovered.db &&
  sqlite3 recovered.db "PRAGMA user_version = $ver")
expect_eq "recovered copy passes integrity_check" "$(sqlite3 "$T/var/recovered.db" "PRAGMA integrity_check")" "ok"
rm -f "$db-wal" "$db-shm"
mv "$T/var/recovered.db" "$db"
out=$("$BIN/medthinkd" -c "$T/medthinkd.conf" --check-store 2>&1); rc=$?
expect_eq "--check-store on the recovered store: exit 0" "$rc" "0"
start_daemon || { nok "daemon starts on the recovered store"; exit 1; }
ok "daemon starts on the recovered store"
expect_match "health is ok again" "$(api http://x/v1/health)" '"status": ?"ok"'
"$BIN/medthink" resume "$job" >/dev/null 2>&1
if wait_job "$job" done 120; then ok "the paused job, resumed, completes"; else nok "the paused job, resumed, completes" "$(api "http://x/v1/jobs/$job")"; fi
[ "$_failed" = 0 ]
