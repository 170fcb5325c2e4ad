#!/bin/sh
# The systemd unit conf/medthinkd.service and its config
# conf/medthinkd-service.conf (issue 16): `systemd-analyze verify` accepts
# the unit (with ExecStart pointed at the built binary, as the unit names
# the installed /usr/local/bin/medthinkd); the config points at the unit's
# RuntimeDirectory and StateDirectory; the daemon started as systemd starts
# it (NOTIFY_SOCKET set) sends READY=1 and serves.
. "$(dirname "$0")/lib.inc"

UNIT="$top/conf/medthinkd.service"
SCONF="$top/conf/medthinkd-service.conf"
key() { sed -n "s/^$1=//p" "$UNIT" | head -n 1; }

# --- the unit, statically
expect_eq "Type=notify" "$(key Type)" "notify"
rt=$(key RuntimeDirectory); sd=$(key StateDirectory)
expect_match "socket under the RuntimeDirectory" "$(sed -n 's/^socket *= *//p' "$SCONF")" "^/run/$rt/[^/]+\.sock$"
expect_match "state_dir is the StateDirectory" "$(sed -n 's/^state_dir *= *//p' "$SCONF")" "^/var/lib/$sd$"
expect_match "ExecStart reads the installed config" "$(key ExecStart)" "^/usr/local/bin/medthinkd -c /etc/medthink/medthinkd.conf$"
expect_match "the unit's comment installs that config" "$(cat "$UNIT")" "conf/medthinkd-service.conf /etc/medthink/medthinkd.conf"
for k in ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
         "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" EnvironmentFile=-/etc/medthink/keys.env; do
  if grep -qx "$k" "$UNIT"; then ok "unit has $k"; else nok "unit has $k"; fi
done

if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir -p "$T/unit"
  sed "s|^ExecStart=/usr/local/bin/medthinkd |ExecStart=$BIN/medthinkd |" "$UNIT" >"$T/unit/medthinkd.service"
  out=$(cd "$T/unit" && systemd-analyze verify ./medthinkd.service 2>&1); rc=$?
  # verify exits 0 on unknown keys and bad values; any line it prints is a problem
  if [ "$rc" = 0 ] && [ -z "$out" ]; then ok "systemd-analyze verify: no complaint"; else nok "systemd-analyze verify: no complaint" "rc $rc: $out"; fi
  # and it does catch a bad unit (the check is not vacuous)
  printf '[Service]\nTypo=1\n' >>"$T/unit/medthinkd.service"
  out=$(cd "$T/unit" && systemd-analyze verify ./medthinkd.service 2>&1)
  expect_match "systemd-analyze verify flags a bad key" "$out" "Unknown key"
else
  ok "systemd-analyze verify # SKIP systemd-analyze not installed (Debian package systemd)"
fi

# --- the config loads as it ships
out=$("$BIN/medthinkd" -c "$SCONF" --check-config 2>&1); rc=$?
expect_eq "service config: --check-config passes" "$rc" "0"

# --- started as systemd starts it: READY=1 on $NOTIFY_SOCKET
mkdir -p "$T/run/$rt" "$T/state"
sed -e "s|/run/$rt/|$T/run/$rt/|" -e "s|/var/lib/$sd|$T/state/$sd|" "$SCONF" >"$T/medthinkd.conf"
python3 - "$T/notify.sock" >"$T/notify.out" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
print(s.recv(4096).decode(), flush=True)
PY
npid=$!
_pids="$_pids $npid"
i=0
while [ ! -S "$T/notify.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
export MEDTHINK_SOCKET="$T/run/$rt/medthinkd.sock"
NOTIFY_SOCKET="$T/notify.sock" "$BIN/medthinkd" -c "$T/medthinkd.conf" 2>>"$T/medthinkd.log" &
DAEMON_PID=$!
_pids="$_pids $DAEMON_PID"
wait "$npid" 2>/dev/null
expect_eq "READY=1 on NOTIFY_SOCKET" "$(cat "$T/notify.out")" "READY=1"
h=$("$BIN/medthink" health 2>&1)
expect_match "serves on the RuntimeDirectory socket" "$h" "ok"
[ -f "$T/state/$sd/medthink.db" ] && ok "store in the StateDirectory" || nok "store in the StateDirectory"
stop_daemon -TERM
expect_eq "SIGTERM: exit 0" "$DAEMON_RC" "0"
exit $_failed
