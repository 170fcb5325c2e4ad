#!/bin/sh
# One daemon per state_dir (issue 9): a second medthinkd on a state_dir in
# use, even with a socket of its own, exits 1 naming the first one's pid and
# touches nothing; the first runs its job to the end with no body sent
# twice; --check-config never takes the lock; after a kill -9 of the first,
# its lock is gone with it and a new daemon starts.
. "$(dirname "$0")/lib.inc"

start_sim T --latency-ms 40 --latency-jitter-ms 20 || exit 1
start_sim S --latency-ms 20 || exit 1
TEACHER_CONC=4
write_conf
start_daemon || { nok "daemon starts"; exit 1; }
ok "first daemon starts"
pid=$(tr -d '\n' <"$T/var/medthinkd.pid")
expect_eq "medthinkd.pid holds the first daemon's pid" "$pid" "$DAEMON_PID"

"$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro >/dev/null
cat >"$T/job.json" <<J
{"name":"lock","dataset":"gastro","kind":"stage1","teacher":"sim","seed":3,"eval_fraction":0}
J
job=$("$BIN/medthink" submit "$T/job.json")
expect_match "job submitted" "$job" '^job_[0-9]+$'

# The second daemon: same state_dir, another socket (MEDTHINK_SOCKET would
# override the file's socket, so it is set too).
sed "s|^socket = .*|socket = $T/second.sock|" "$T/medthinkd.conf" >"$T/second.conf"
MEDTHINK_SOCKET="$T/second.sock" "$BIN/medthinkd" -c "$T/second.conf" >"$T/second.out" 2>"$T/second.log"
rc=$?
err=$(cat "$T/second.log")
expect_eq "second daemon on the same state_dir exits 1" "$rc" "1"
expect_match "it names the first one's pid" "$err" "pid $DAEMON_PID"
expect_match "it names the state_dir" "$err" "state_dir $T/var"
expect_eq "it says so in one line" "$(wc -l <"$T/second.log" | tr -d ' ')" "1"
[ -e "$T/second.sock" ] && nok "second daemon made no socket" || ok "second daemon made no socket"
expect_eq "the pid file still names the first" "$(tr -d '\n' <"$T/var/medthinkd.pid")" "$DAEMON_PID"

out=$(MEDTHINK_SOCKET="$T/second.sock" "$BIN/medthinkd" -c "$T/second.conf" --check-config 2>&1); rc=$?
expect_eq "--check-config does not take the lock (exit 0 beside a running daemon)" "$rc" "0"

# The first is unaffected: its job completes and no body reached a model twice.
if wait_job "$job" done 120; then ok "the first daemon's job completes"; else nok "the first daemon's job completes" "$(api "http://x/v1/jobs/$job")"; fi
h=$(api http://x/v1/health)
expect_match "the first daemon is healthy" "$h" '"status": ?"ok"'
dT=$(sim_stats "$SIM_PORT_T" | jq_py 'd["duplicate_bodies"]')
nT=$(sim_stats "$SIM_PORT_T" | jq_py 'd["requests_total"]')
dS=$(sim_stats "$SIM_PORT_S" | jq_py 'd["duplicate_bodies"]')
[ "$nT" -gt 0 ] && ok "the teacher was called ($nT requests)" || nok "the teacher was called" "$nT"
expect_eq "no body sent to the teacher twice" "$dT" "0"
expect_eq "no body sent to the student twice" "$dS" "0"
n=$(grep -c "database is locked" "$T/medthinkd.log")
expect_eq "no 'database is locked' in the log" "$n" "0"

# kill -9: the kernel drops the lock with the process; the file stays.
stop_daemon -KILL
[ -s "$T/var/medthinkd.pid" ] && ok "a killed daemon leaves its pid file" || nok "a killed daemon leaves its pid file"
start_daemon || { nok "a new daemon starts after kill -9 of the first"; exit 1; }
ok "a new daemon starts after kill -9 of the first"
expect_eq "the pid file names the new daemon" "$(tr -d '\n' <"$T/var/medthinkd.pid")" "$DAEMON_PID"
s=$(api "http://x/v1/jobs/$job" | jq_py 'd["state"]')
expect_eq "the job is still done" "$s" "done"
stop_daemon
expect_eq "clean stop exits 0" "$DAEMON_RC" "0"
[ -s "$T/var/medthinkd.pid" ] && nok "a clean stop empties the pid file" || ok "a clean stop empties the pid file"
[ "$_failed" = 0 ]
