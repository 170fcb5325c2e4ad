# Shared by the integration tests (POSIX sh). Source it; it sets up a
# temporary directory, starts simulators and the real daemon on request, and
# stops everything on exit. Checks print "ok - NAME" or "not ok - NAME".
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-bin}
case "$BIN" in /*) ;; *) BIN="$top/$BIN" ;; esac
SHARED=${SHARED:-$top/../shared}
T=$(mktemp -d "${TMPDIR:-/tmp}/medthink-test.XXXXXX")
export MEDTHINK_SOCKET="$T/medthinkd.sock"
_pids=""
_failed=0

_cleanup() {
  for p in $_pids; do kill "$p" 2>/dev/null; done
  for p in $_pids; do wait "$p" 2>/dev/null; done
  if [ "$_failed" = 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$T"; else echo "# kept $T"; fi
}
trap _cleanup EXIT
trap 'exit 1' INT TERM

ok() { echo "ok - $1"; }
nok() { echo "not ok - $1"; _failed=1; [ -n "${2:-}" ] && printf '#   %s\n' "$2"; return 0; }
# check NAME CMD...: ok when CMD exits 0
check() {
  name=$1; shift
  if out=$("$@" 2>&1); then ok "$name"; else nok "$name" "$(printf '%s' "$out" | head -c 600)"; fi
}
# expect_eq NAME GOT WANT
expect_eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else nok "$1" "got [$2] want [$3]"; fi
}
# expect_match NAME TEXT REGEX (grep -E)
expect_match() {
  if printf '%s' "$2" | grep -Eq -- "$3"; then ok "$1"; else nok "$1" "[$2] !~ /$3/"; fi
}

# start_sim NAME [FLAGS...]: starts a simulator on an ephemeral port; sets
# SIM_PORT_<NAME> and SIM_PID_<NAME>.
start_sim() {
  n=$1; shift
  "$BIN/medthink-sim" --listen 127.0.0.1:0 "$@" >"$T/sim-$n.out" 2>"$T/sim-$n.log" &
  p=$!
  _pids="$_pids $p"
  i=0
  while ! grep -q 'listening on' "$T/sim-$n.out" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "# sim $n did not start"; cat "$T/sim-$n.log"; return 1; }
    sleep 0.05
  done
  port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$T/sim-$n.out" | head -n 1)
  eval "SIM_PORT_$n=$port; SIM_PID_$n=$p"
}

sim_stats() { curl -s "http://127.0.0.1:$1/sim/stats"; }

# write_conf [EXTRA...]: a config in $T/medthinkd.conf with teacher.sim and
# student.local pointing at the simulators T and S; extra lines appended
# to the teacher section via TEACHER_EXTRA, to the file via CONF_EXTRA.
write_conf() {
  cat >"$T/medthinkd.conf" <<CONF
[daemon]
socket = $T/medthinkd.sock
state_dir = $T/var
log_level = ${LOG_LEVEL:-info}
prompts_dir = $top/conf/prompts

[teacher.sim]
base_url = http://127.0.0.1:${SIM_PORT_T:-1}/v1
model = sim-teacher
max_concurrency = ${TEACHER_CONC:-32}
max_retries = ${TEACHER_RETRIES:-6}
timeout_s = ${TEACHER_TIMEOUT:-10}
price_in_per_mtok = 2.5
price_out_per_mtok = 10
${TEACHER_EXTRA:-}

[student.local]
base_url = http://127.0.0.1:${SIM_PORT_S:-1}/v1
model = sim-student
max_concurrency = 8
timeout_s = 10
${CONF_EXTRA:-}
CONF
}

# start_daemon: starts medthinkd on $T/medthinkd.conf and waits for health.
start_daemon() {
  "$BIN/medthinkd" -c "$T/medthinkd.conf" 2>>"$T/medthinkd.log" &
  DAEMON_PID=$!
  _pids="$_pids $DAEMON_PID"
  i=0
  until "$BIN/medthink" health >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$DAEMON_PID" 2>/dev/null; then
      echo "# medthinkd did not start:"; tail -n 20 "$T/medthinkd.log" | sed 's/^/#   /'
      return 1
    fi
    sleep 0.05
  done
}

stop_daemon() {
  kill "${1:--TERM}" "$DAEMON_PID" 2>/dev/null
  wait "$DAEMON_PID" 2>/dev/null
  DAEMON_RC=$?
}

api() { curl -s --unix-socket "$MEDTHINK_SOCKET" "$@"; }
# api_code METHOD PATH [curl args]: prints the HTTP status code only
api_code() { m=$1; p=$2; shift 2; curl -s -o "$T/last.json" -w '%{http_code}' --unix-socket "$MEDTHINK_SOCKET" -X "$m" "http://x$p" "$@"; }
jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# wait_job JOB STATE [SECONDS]
wait_job() {
  i=0; lim=$(( ${3:-60} * 10 ))
  while :; do
    s=$(api "http://x/v1/jobs/$1" | jq_py 'd.get("state")' 2>/dev/null)
    [ "$s" = "$2" ] && return 0
    case "$s" in done|failed|cancelled) [ "$s" != "$2" ] && return 1 ;; esac
    i=$((i + 1)); [ $i -gt $lim ] && return 1
    sleep 0.1
  done
}
