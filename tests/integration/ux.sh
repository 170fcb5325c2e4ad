#!/bin/sh
# The paths users take (issue 16): log lines outside journald, a quiet
# --check-config, export before a set exists and while it grows, list's
# percentage of a paused pipeline, `export | head`, --json errors, import
# without --format, file-named import errors, duplicate dataset names.
. "$(dirname "$0")/lib.inc"

# --- the log: timestamps and level names, not <N>, when not under journald
write_conf
"$BIN/medthinkd" -c "$T/medthinkd.conf" --check-config >"$T/cc.out" 2>"$T/cc.err"
expect_eq "--check-config: exit 0" "$?" 0
expect_eq "--check-config: nothing on stderr" "$(cat "$T/cc.err")" ""
if grep -q '<[0-9]>' "$T/cc.out"; then nok "--check-config: no log lines on stdout" "$(cat "$T/cc.out")"; else ok "--check-config: no log lines on stdout"; fi
start_sim T --latency-ms 150 || exit 1
start_sim S --latency-ms 1 || exit 1
write_conf
start_daemon || { nok "daemon starts"; exit 1; }
first=$(head -n 1 "$T/medthinkd.log")
expect_match "log line: UTC timestamp and level" "$first" '^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z (info|warn|error|debug) '
if grep -q '^<[0-9]>' "$T/medthinkd.log"; then nok "log: no <N> prefix off the journal"; else ok "log: no <N> prefix off the journal"; fi
# under journald (JOURNAL_STREAM names stderr's dev:ino) lines keep <N>:
# a second daemon on the same state_dir logs one error and exits
: >"$T/jr.log"
JOURNAL_STREAM=$(stat -L -c '%d:%i' "$T/jr.log") "$BIN/medthinkd" -c "$T/medthinkd.conf" 2>>"$T/jr.log"
expect_match "journald: <3> prefix kept" "$(cat "$T/jr.log")" '^<3>another medthinkd'
JOURNAL_STREAM=1:2 "$BIN/medthinkd" -c "$T/medthinkd.conf" 2>"$T/nj.log"
expect_match "JOURNAL_STREAM of another file: timestamps" "$(cat "$T/nj.log")" '^20[0-9-]+T[0-9:.]+Z error another medthinkd'
