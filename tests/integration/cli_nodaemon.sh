#!/bin/sh
# medthink without a daemon: exit codes (1 unreachable, 2 usage), the message
# that names the socket and how to start medthinkd, --help and --version, and
# the checks the CLI makes before it connects. Prints "ok - NAME" per check.
BIN=${BIN:-bin}
top=$(cd "$(dirname "$0")/../.." && pwd)
mt="$top/$BIN/medthink"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli_nodaemon.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fails=0

check() { # NAME, then a command that succeeds when the check passes
  name=$1; shift
  if "$@"; then echo "ok - $name"; else echo "not ok - $name"; fails=$((fails + 1)); fi
}

# run EXPECTED_RC ARGS...: runs medthink in $tmp, keeps stdout/stderr
run() {
  want=$1; shift
  (cd "$tmp" && "$mt" "$@" >"$tmp/out" 2>"$tmp/err")
  rc=$?
  [ "$rc" -eq "$want" ] || { echo "# medthink $*: exit $rc, wanted $want; stderr:"; sed 's/^/#   /' "$tmp/err"; return 1; }
}
err_has() { grep -F -q -- "$1" "$tmp/err" || { echo "# stderr lacks: $1"; sed 's/^/#   /' "$tmp/err"; return 1; }; }
out_has() { grep -F -q -- "$1" "$tmp/out" || { echo "# stdout lacks: $1"; return 1; }; }
err_lines() { [ "$(wc -l <"$tmp/err")" -eq "$1" ] || { echo "# stderr has $(wc -l <"$tmp/err") lines, wanted $1"; sed 's/^/#   /' "$tmp/err"; return 1; }; }

[ -x "$mt" ] || { echo "not ok - medthink binary exists ($mt)"; exit 1; }

unset MEDTHINK_SOCKET
check "unreachable (default path): exit 1" run 1 health
check "unreachable: names ./var/medthinkd.sock" err_has "./var/medthinkd.sock"
check "unreachable: says how to start the daemon" err_has "medthinkd -c conf/medthinkd.conf"
check "unreachable: one line on stderr" err_lines 1

export MEDTHINK_SOCKET="$tmp/env.sock"
check "unreachable (env): exit 1" run 1 list
check "unreachable (env): names \$MEDTHINK_SOCKET" err_has "$tmp/env.sock"
check "flag beats env" run 1 -s "$tmp/flag.sock" status
check "flag beats env: names the flag's path" err_has "$tmp/flag.sock"
check "--socket=PATH after the command" run 1 status job_1 --socket="$tmp/late.sock"
check "--socket=PATH: named" err_has "$tmp/late.sock"

# a socket file nobody listens on (a daemon that died): ECONNREFUSED
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$tmp/stale.sock" 2>/dev/null
if [ -S "$tmp/stale.sock" ]; then
  check "stale socket: exit 1" run 1 -s "$tmp/stale.sock" health
  check "stale socket: refused, named, hint" sh -c "grep -q 'stale.sock' '$tmp/err' && grep -q 'medthinkd -c' '$tmp/err'"
fi
long=$(printf '%0200d' 0)
check "socket path too long: exit 1" run 1 -s "$tmp/$long.sock" health
check "socket path too long: says so" err_has "too long"
check "--json is accepted anywhere (still exit 1 without daemon)" run 1 status --json
check "--json before the command" run 1 --json list

# usage errors: exit 2 and a usage line
check "no command: exit 2" run 2
check "no command: usage on stderr" err_has "usage: medthink"
check "unknown command: exit 2" run 2 frobnicate
check "unknown command: named" err_has '"frobnicate"'
check "unknown global flag: exit 2" run 2 --frob list
check "unknown command flag: exit 2" run 2 status --frob
check "unknown command flag: usage line" err_has "usage: medthink status"
check "missing argument: exit 2" run 2 export
check "missing argument: names JOB" err_has "missing JOB"
check "too many arguments: exit 2" run 2 cancel job_1 job_2
check "export without --set: exit 2" run 2 export job_1 --format openai
check "export --set 3: exit 2" run 2 export job_1 --set 3 --format openai
# Format names are checked by the daemon from its tables (the CLI keeps no
# list): an unknown one is exit 2 with a daemon (tests/integration/formats.sh);
# without one the CLI cannot know, and says the daemon is unreachable. An
# empty name is still refused here.
check "export --format '': exit 2" run 2 export job_1 --set 1 --format ''
check "import --format '': exit 2" run 2 import x.jsonl --format ''
check "export --format xml, no daemon: exit 1 (the daemon checks names)" run 1 export job_1 --set 1 --format xml
check "export --format xml, no daemon: says unreachable" err_has "cannot reach medthinkd"
check "formats, no daemon: exit 1" run 1 formats
check "option missing its value: exit 2" run 2 export job_1 --set
check "status --watch without JOB: exit 2" run 2 status --watch
check "help for an unknown command: exit 2" run 2 help nosuch

# help and version
check "--help: exit 0" run 0 --help
check "--help: lists the commands" sh -c "grep -q 'medthink import FILE' '$tmp/out' && grep -q 'medthink export JOB' '$tmp/out' && grep -q 'medthink logs JOB' '$tmp/out'"
check "help: exit 0" run 0 help
check "help export: exit 0" run 0 help export
check "help export: usage" out_has "usage: medthink export JOB --set 1|2"
check "help export: points to medthink formats" out_has "see \`medthink formats\`"
check "help import: exit 0" run 0 help import
check "help import: points to medthink formats" out_has "see \`medthink formats\`"
check "status --help: exit 0" run 0 status --help
check "status --help: usage" out_has "usage: medthink status [JOB] [--watch]"
check "--version: exit 0" run 0 --version
check "--version: prints it" out_has "medthink "

# checks made before connecting
check "import of a missing file: exit 1" run 1 import "$tmp/none.jsonl"
check "import of a missing file: named" err_has "none.jsonl"
printf '{"question":"q","answer":"A"}\n{"question":"q","answer":"A","images":["pics/x.png"]}\n' >"$tmp/d.jsonl"
check "import with a missing image: exit 1" run 1 import "$tmp/d.jsonl"
check "import with a missing image: names file, line, item and path" err_has "d.jsonl: line 2: item without \"id\": image \"pics/x.png\": No such file or directory"
mkdir -p "$tmp/ds"
printf '{"id":"x1","question":"q","answer":"A","images":["../outside.png"]}\n' >"$tmp/ds/e.jsonl"
printf '\211PNG\r\n\032\n0000' >"$tmp/outside.png"
check "import with a ../ image: exit 1" run 1 import "$tmp/ds/e.jsonl"
check "import with a ../ image: refused before connecting" err_has "e.jsonl: line 1: item \"x1\": image \"../outside.png\": resolves to $(cd "$tmp" && pwd -P)/outside.png, outside the dataset's folder $(cd "$tmp" && pwd -P)/ds"
printf '{"name": "x",\n "dataset": oops}\n' >"$tmp/job.json"
check "submit of broken JSON: exit 1" run 1 submit "$tmp/job.json"
check "submit of broken JSON: file:line:column" err_has "job.json:2:"

# --json: the CLI's own errors are JSON objects too, exit codes unchanged
# json_err CODE: stdout is one {"error":{"code":CODE,"message":...}} object
json_err() {
  python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; sys.exit(0 if e["code"]==sys.argv[2] and e["message"] else 1)' "$tmp/out" "$1" \
    || { echo "# stdout is not an error object with code $1:"; sed 's/^/#   /' "$tmp/out"; return 1; }
}
check "--json unreachable: exit 1" run 1 --json list
check "--json unreachable: JSON error on stdout" json_err unreachable
check "--json unreachable: the line on stderr too" err_has "cannot reach medthinkd"
check "--json unknown command: exit 2" run 2 frobnicate --json
check "--json unknown command: JSON error" json_err usage
check "--json no command: exit 2" run 2 --json
check "--json no command: JSON error" json_err usage
check "--json missing argument: exit 2" run 2 export --json
check "--json missing argument: JSON error" json_err usage
check "--json bad --budget-usd: exit 2" run 2 resume job_1 --budget-usd x --json
check "--json bad --budget-usd: JSON error" json_err usage
check "--json import of a missing file: exit 1" run 1 --json import "$tmp/none.jsonl"
check "--json import of a missing file: JSON error" json_err failed
check "--json submit of broken JSON: exit 1" run 1 --json submit "$tmp/job.json"
check "--json submit of broken JSON: JSON error" json_err failed

echo "# $fails failed"
[ "$fails" -eq 0 ]
