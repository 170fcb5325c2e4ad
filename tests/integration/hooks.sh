#!/bin/sh
# Child processes through the real daemon (issue 9, item 6): the train hook
# and a student engine see no API key but an engine's own; a hook or engine
# that ignores SIGTERM, and the child it started, are gone within the kill
# grace (+ a margin) after a cancel, a timeout and a daemon shutdown.
. "$(dirname "$0")/lib.inc"

# alive PID: runs and is not a zombie (an orphan's zombie may wait for a
# reaper that never comes in a container).
alive() {
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
  [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}
gone() { for p in "$@"; do [ -n "$p" ] && alive "$p" && return 1; done; return 0; }
# wait_for SECONDS CMD...: polls CMD every 0.1 s
wait_for() {
  lim=$(( $1 * 10 )); shift; i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt $lim ] && return 1
    sleep 0.1
  done
}
pid_of() { cat "$T/$1.pid" 2>/dev/null; }
# Whatever a failed check left running must not outlive the test.
_reap() { for f in "$T"/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done; return 0; }
trap '_reap; _cleanup' EXIT

# stop_within SECONDS: SIGTERM to the daemon; fails (and SIGKILLs it) when it
# has not exited within SECONDS.
stop_within() {
  kill -TERM "$DAEMON_PID" 2>/dev/null
  if wait_for "$1" sh -c "! { s=\$(sed 's/.*) //' /proc/$DAEMON_PID/stat 2>/dev/null | cut -c1); [ -n \"\$s\" ] && [ \"\$s\" != Z ]; }"; then
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_RC=$?
    return 0
  fi
  kill -9 "$DAEMON_PID" 2>/dev/null
  wait "$DAEMON_PID" 2>/dev/null
  DAEMON_RC=killed
  return 1
}

export MT_TEACHER_KEY=sk-teacher-secret MT_STUDENT_KEY=sk-student-secret MT_ENG_KEY=sk-engine-own
export OPENAI_API_KEY=sk-openai-unconfigured HF_TOKEN=hf-kept-for-trainers

# The hook: "env" mode notes its environment and exits; "stubborn" mode
# ignores SIGTERM (so does the child it starts: ignored signals are inherited)
# and waits for ever.
cat >"$T/hook.sh" <<H
#!/bin/sh
env >"$T/hook.env.tmp" && mv "$T/hook.env.tmp" "$T/hook.env"
[ "\$(cat "$T/mode")" = stubborn ] || exit 0
trap '' TERM
sleep 1000 &
echo \$! >"$T/hook-child.pid.tmp" && mv "$T/hook-child.pid.tmp" "$T/hook-child.pid"
echo \$\$ >"$T/hook.pid.tmp" && mv "$T/hook.pid.tmp" "$T/hook.pid"
wait
H
# The engine: notes its environment, ignores SIGTERM, starts a child, waits.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$T/engine.sh" <<E
#!/bin/sh
env >"$T/engine.env.tmp" && mv "$T/engine.env.tmp" "$T/engine.env"
trap '' TERM
sleep 1000 &
echo \$! >"$T/engine-child.pid.tmp" && mv "$T/engine-child.pid.tmp" "$T/engine-child.pid"
echo \$\$ >"$T/engine.pid.tmp" && mv "$T/engine.pid.tmp" "$T/engine.pid"
wait
E

start_sim T --latency-ms 2 || exit 1
start_sim S --latency-ms 1 || exit 1
TEACHER_EXTRA="api_key_env = MT_TEACHER_KEY"
# conf TIMEOUT_S ENGINE(0|1)
conf() {
  eng=""
  [ "$2" = 1 ] && eng="
[student.eng]
base_url = http://127.0.0.1:$PORT/v1
model = eng
api_key_env = MT_ENG_KEY
command = /bin/sh $T/engine.sh"
  CONF_EXTRA="api_key_env = MT_STUDENT_KEY
$eng

[train]
command = /bin/sh $T/hook.sh {set}
timeout_s = $1
kill_grace_s = 1"
  write_conf
}
submit() {
  echo '{"dataset":"gastro","kind":"pipeline","teacher":"sim","student":"local","train":"hook","max_items":4,"eval_fraction":0.25}' >"$T/p.json"
  "$BIN/medthink" submit "$T/p.json"
}
has_var() { grep -q "^$1=" "$2"; }

# ---- run 1: environments; a cancel stops a stubborn hook and its child
conf 60 1
echo env >"$T/mode"
start_daemon || { nok "medthinkd starts"; exit 1; }
"$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro >/dev/null
job=$(submit)
if wait_for 60 test -s "$T/hook.env"; then ok "the hook ran"; else nok "the hook ran" "$(api "http://x/v1/jobs/$job")"; fi
"$BIN/medthink" cancel "$job" >/dev/null 2>&1
for v in MT_TEACHER_KEY MT_STUDENT_KEY MT_ENG_KEY OPENAI_API_KEY; do
  if has_var $v "$T/hook.env"; then nok "hook: no $v in its environment"; else ok "hook: no $v in its environment"; fi
done
check "hook: other variables are kept (HF_TOKEN)" has_var HF_TOKEN "$T/hook.env"
check "hook: the daemon itself has the teacher key" grep -q '^MT_TEACHER_KEY=' "/proc/$DAEMON_PID/environ"

if wait_for 30 test -s "$T/engine.env"; then ok "the engine ran"; else nok "the engine ran"; fi
for v in MT_TEACHER_KEY MT_STUDENT_KEY OPENAI_API_KEY; do
  if has_var $v "$T/engine.env"; then nok "engine: no $v in its environment"; else ok "engine: no $v in its environment"; fi
done
check "engine: its own key is kept (MT_ENG_KEY)" has_var MT_ENG_KEY "$T/engine.env"

echo stubborn >"$T/mode"
job=$(submit)
if wait_for 60 test -s "$T/hook.pid"; then ok "stubborn hook started"; else nok "stubborn hook started" "$(api "http://x/v1/jobs/$job")"; fi
H1=$(pid_of hook); C1=$(pid_of hook-child)
"$BIN/medthink" cancel "$job" >/dev/null 2>&1
# grace 1 s + margin
check "cancel: the hook that ignores SIGTERM is killed" wait_for 10 gone "$H1"
check "cancel: its child is killed too" wait_for 10 gone "$C1"
check "cancel: the SIGKILL is logged" grep -q 'train hook pid [0-9]* did not exit within 1.0 s of SIGTERM' "$T/medthinkd.log"
CANCELLED=$job
E1=$(pid_of engine); EC1=$(pid_of engine-child)
# engine grace: 10 s fixed, + margin
if stop_within 30; then ok "shutdown: the daemon waits for a stubborn engine, bounded"; else nok "shutdown: the daemon waits for a stubborn engine, bounded"; fi
expect_eq "shutdown: exit 0" "$DAEMON_RC" 0
check "shutdown: the engine that ignores SIGTERM is gone" gone "$E1"
check "shutdown: the engine's child is gone" gone "$EC1"
# by now the hook's exit has long been handled
st=$(sqlite3 "$T/var/medthink.db" "select state from jobs where id=${CANCELLED#job_}")
expect_eq "cancel: the job stays cancelled once the hook is gone" "$st" "cancelled"
rm -f "$T"/*.pid

# ---- run 2: a timeout stops a stubborn hook and its child
conf 2 0
start_daemon || { nok "medthinkd starts again"; exit 1; }
job=$(submit)
if wait_for 60 test -s "$T/hook.pid"; then ok "timeout: stubborn hook started"; else nok "timeout: stubborn hook started"; fi
H2=$(pid_of hook); C2=$(pid_of hook-child)
# timeout 2 s + grace 1 s + margin
check "timeout: the hook is killed" wait_for 20 gone "$H2"
check "timeout: its child is killed too" wait_for 10 gone "$C2"
if wait_job "$job" paused 20; then ok "timeout: the job pauses"; else nok "timeout: the job pauses" "$(api "http://x/v1/jobs/$job")"; fi
expect_match "timeout: the reason says so" "$(api "http://x/v1/jobs/$job" | jq_py 'd.get("reason")')" "timed out"
"$BIN/medthink" cancel "$job" >/dev/null 2>&1
stop_within 30 || nok "the second daemon stops"
rm -f "$T"/*.pid

# ---- run 3: a daemon shutdown stops a stubborn hook and its child
conf 600 0
start_daemon || { nok "medthinkd starts a third time"; exit 1; }
job=$(submit)
if wait_for 60 test -s "$T/hook.pid"; then ok "shutdown: stubborn hook started"; else nok "shutdown: stubborn hook started"; fi
H3=$(pid_of hook); C3=$(pid_of hook-child)
# grace 1 s + margin
if stop_within 15; then ok "shutdown: the daemon waits for the hook, bounded"; else nok "shutdown: the daemon waits for the hook, bounded"; fi
expect_eq "shutdown with a hook: exit 0" "$DAEMON_RC" 0
check "shutdown: the hook is gone" gone "$H3"
check "shutdown: the hook's child is gone" gone "$C3"
if grep -q 'open handles' "$T/medthinkd.log"; then nok "shutdown: no handle left" "$(grep 'open handles' "$T/medthinkd.log")"; else ok "shutdown: no handle left"; fi

[ "$_failed" = 0 ]
