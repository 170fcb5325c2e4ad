#!/bin/sh
# The student engine supervisor through the real daemon: [student.local] has a
# `command` that runs the simulator on a fixed port; medthinkd must start it,
# restart it after a kill -9, and stop it when the daemon stops.
. "$(dirname "$0")/lib.inc"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SIM_PORT_S=$PORT
start_sim T --latency-ms 2 || exit 1
# The engine: a wrapper that notes the model it was started with, then runs
# the simulator. The train hook names a new model in OUT_DIR/MODEL.
cat >"$T/engine.sh" <<E
#!/bin/sh
echo "\$1" >>"$T/engine-models"
exec "$BIN/medthink-sim" --listen 127.0.0.1:$PORT
E
cat >"$T/hook.sh" <<E
#!/bin/sh
echo "$T/model-set\$1" >"\$2/MODEL"
E
CONF_EXTRA="model_path = $T/model-base
command = /bin/sh $T/engine.sh {model_path}

[train]
command = /bin/sh $T/hook.sh {set} {out_dir}"
write_conf

# engine_pid N: the pid in the Nth "student.local: started pid" line, or empty
engine_pid() {
  sed -n 's/.*student\.local: started pid \([0-9][0-9]*\).*/\1/p' "$T/medthinkd.log" | sed -n "${1}p"
}
# wait_for SECONDS CMD...: polls CMD every 0.1 s
wait_for() {
  lim=$(( $1 * 10 )); shift; i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt $lim ] && return 1
    sleep 0.1
  done
}
models_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/models")" = 200 ]; }
started_twice() { [ -n "$(engine_pid 2)" ]; }
healthy_twice() { [ "$(grep -c 'student\.local: healthy after' "$T/medthinkd.log")" -ge 2 ]; }

if ! start_daemon; then
  nok "medthinkd starts with a student command"
  exit 1
fi
ok "medthinkd starts with a student command"

check "the engine answers /v1/models" wait_for 20 models_ok
check "the log says it is healthy" wait_for 20 grep -q 'student\.local: healthy after' "$T/medthinkd.log"
check "the engine's output is in the log" grep -q 'student\.local: .*SIMULATOR' "$T/medthinkd.log"
P1=$(engine_pid 1)
expect_match "the engine's pid is logged" "$P1" '^[0-9]+$'

kill -9 "$P1" 2>/dev/null
check "a killed engine is started again" wait_for 20 started_twice
check "the new engine is healthy" wait_for 20 healthy_twice
check "the new engine answers" wait_for 10 models_ok
check "the exit is logged with its signal" grep -q 'student\.local: pid '"$P1"' killed by signal 9' "$T/medthinkd.log"

# A pipeline with a train hook: the engine is restarted on each retrained model.
"$BIN/medthink" import "$top/examples/gastro-sample.jsonl" --name gastro >/dev/null
echo '{"dataset":"gastro","kind":"pipeline","teacher":"sim","student":"local","train":"hook","max_items":6,"eval_fraction":0.1}' >"$T/p.json"
job=$("$BIN/medthink" submit "$T/p.json")
if wait_job "$job" done 120; then ok "pipeline with hook and engine restarts done"; else nok "pipeline with hook and engine restarts done" "$(api http://x/v1/jobs/$job)"; fi
models=$(tr '\n' ' ' <"$T/engine-models")
expect_match "engine restarted on each retrained model" "$models" "model-set1 .*model-set2"
expect_match "the job log says so" "$("$BIN/medthink" logs "$job")" "restarted on the retrained model"
P2=$(sed -n 's/.*student\.local: started pid \([0-9][0-9]*\).*/\1/p' "$T/medthinkd.log" | tail -n 1)

stop_daemon
expect_eq "medthinkd exits 0 on SIGTERM" "$DAEMON_RC" 0
gone() { ! kill -0 "$P2" 2>/dev/null; }
check "the engine stops with the daemon" wait_for 5 gone
check "nothing answers on the engine's port" sh -c "! curl -s -m 2 http://127.0.0.1:$PORT/v1/models"
