#!/bin/sh
# The docs cannot drift: runs every command shown in README.md,
# docs/tutorial.md and docs/tutorial-rl.md, in order, against the simulator, and fails naming the
# doc, the line and the command.
#
# What runs: every ```sh block (one command a logical line; a trailing "\"
# continues it) and every ```sql block (through `sqlite3 -readonly` on
# var/medthink.db). A block right after the line
#   <!-- doc-test: skip REASON -->
# is not run (the reason is printed). A ```json block after a line ending in
# "`NAME.json`:" is written to NAME.json (the job specs the reader saves);
# other fences (json, ini, plain) are shown text, not commands.
#
# Where: each doc runs in its own temp dir laid out like the repository root
# (bin/, examples/, conf/prompts/ link to this tree; conf/medthinkd.conf is the
# shipped one with the simulator's address put in place of 127.0.0.1:8090), one
# shell per doc, so `export` and `cd` carry over as they would for a reader.
#
# Rewrites, because a test cannot do what a reader does (the table is
# doc_rewrite() below):
#   - make deps / make / make demo / make test: skipped (the tree is built;
#     the demo uses the fixed port 8090 and the repository's var/);
#   - the real datasets (cp of MedQA's test.jsonl, git clone of PubMedQA and
#     PrecisionBoost): a small slice of ../shared/data put where the command
#     would leave it;
#   - `cp conf/medthinkd.conf conf/local.conf`: also appends the tutorial's
#     [teacher.gpt4o] section (the doc's own ini block) with its base_url
#     pointed at the simulator: the real-provider commands run against it;
#   - `medthinkd ... &`: first stops the daemon this doc started before, if
#     any (a restart, as after a crash), then waits until `medthink health`
#     answers; `kill %1`: stops that daemon and waits for it to exit;
#   - `medthink status JOB --watch`: waits until the job is no longer queued or
#     running (a paused job never ends a watch), then prints `status JOB`;
#   - llama-server, vllm, sqlite3's interactive shell: skipped (no engine here;
#     the SQL blocks run instead).
. "$(dirname "$0")/lib.inc"
unset MEDTHINK_SOCKET

command -v python3 >/dev/null || { nok "python3 present"; exit 1; }

# run_doc DOC LATENCY_MS: extracts DOC's commands and runs them in $T/DOC/.
run_doc() {
  doc=$1
  root="$T/$(echo "$doc" | tr '/.' '__')"
  mkdir -p "$root/conf"
  ln -s "$BIN" "$root/bin"
  ln -s "$top/examples" "$root/examples"
  ln -s "$top/conf/prompts" "$root/conf/prompts"
  start_sim "$(echo "$doc" | tr -dc 'a-z')" --seed 7 --latency-ms "$2" || { nok "$doc: simulator"; return; }
  eval "port=\$SIM_PORT_$(echo "$doc" | tr -dc 'a-z')"
  sed "s/127\.0\.0\.1:8090/127.0.0.1:$port/g" "$top/conf/medthinkd.conf" >"$root/conf/medthinkd.conf"
  python3 - "$top/$doc" "$doc" "$port" "$SHARED/data" >"$root/doc.sh" <<'PY' || { nok "$doc: extract commands"; return; }
import json, re, shlex, sys
path, doc, port, shared = sys.argv[1:5]
lines = open(path, encoding="utf-8").read().split("\n")

def q(s):
    return shlex.quote(s)

# The tutorial's [teacher.*] ini block: appended to conf/local.conf.
teacher_ini = ""
blocks = []          # (lang, first line number, [(lineno, text)], skip reason)
i = 0
while i < len(lines):
    m = re.match(r"^\s*```(\w*)\s*$", lines[i])
    if not m:
        i += 1
        continue
    lang = m.group(1)
    skip = None
    for k in range(i - 1, -1, -1):
        if lines[k].strip() == "":
            continue
        s = re.match(r"^\s*<!-- doc-test: skip (.*?) -->\s*$", lines[k])
        if s:
            skip = s.group(1)
        break
    body = []
    j = i + 1
    while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
        body.append((j + 1, lines[j]))
        j += 1
    blocks.append((lang, i + 1, body, skip))
    if lang == "ini" and body and body[0][1].strip().startswith("[teacher.") and not teacher_ini:
        teacher_ini = "\n".join(
            re.sub(r"^base_url\s*=.*$", "base_url = http://127.0.0.1:%s/v1" % port, t)
            for _, t in body) + "\n"
    i = j + 1

fixtures = {
    "cp data_clean/questions/US/test.jsonl medqa_test.jsonl":
        "mkdir -p data_clean/questions/US && head -n 40 %s/medqa/medqa_test.jsonl "
        ">data_clean/questions/US/test.jsonl && cp data_clean/questions/US/test.jsonl medqa_test.jsonl"
        % q(shared),
    "git clone --depth 1 https://github.com/pubmedqa/pubmedqa":
        "mkdir -p pubmedqa/data && python3 -c 'import json,sys; d=json.load(open(sys.argv[1]));"
        " json.dump(dict(list(d.items())[:20]), open(sys.argv[2], \"w\"))' %s/pubmedqa/ori_pqal.json"
        " pubmedqa/data/ori_pqal.json" % q(shared),
    "git clone --depth 1 https://github.com/destinybird/PrecisionBoost":
        "mkdir -p PrecisionBoost/data && python3 -c 'import json,sys; d=json.load(open(sys.argv[1]));"
        " json.dump(d[:20], open(sys.argv[2], \"w\"), ensure_ascii=False)'"
        " %s/medthink/digestive_Qwen2_72b_Instruction_train.json"
        " PrecisionBoost/data/digestive_Qwen2_72b_Instruction_train.json" % q(shared),
}

def rewrite(cmd):
    """The command to run for cmd, or (None, reason) to skip it."""
    c = re.sub(r"\s+#.*$", "", cmd).strip()
    if re.match(r"^make(\s|$)", c):
        return None, "make runs before the tests; the demo uses the fixed port 8090 and the repository's var/"
    if c in fixtures:
        return fixtures[c], None
    if c.startswith("llama-server ") or c.startswith("vllm "):
        return None, "no inference engine here (the simulator plays the student)"
    if c == "kill %1":
        return "_doc_daemon_stop", None
    if c == "cp conf/medthinkd.conf conf/local.conf":
        return c + " && cat >>conf/local.conf <<'INI'\n\n" + teacher_ini + "INI", None
    m = re.match(r"^((?:bin/)?medthink) status (\S+) --watch$", c)
    if m:
        return "_doc_settle %s && %s status %s" % (q(m.group(2)), m.group(1), q(m.group(2))), None
    if re.match(r"^sqlite3 .*[^<]$", c) and "<" not in c:
        return None, "an interactive shell (the SQL blocks below run through sqlite3 -readonly)"
    if re.match(r"^(bin/)?medthinkd .*&$", c) and "--check-config" not in c:
        return "_doc_daemon_stop\n" + c + "\n_doc_daemon_pid=$!; _doc_daemon_wait", None
    return c, None

out = ["set -u", ". ./doc.inc"]
for lang, start, body, skip in blocks:
    if lang == "json" and not skip:
        prev = [t for t in lines[:start - 1] if t.strip()][-1:]
        f = re.search(r"`([\w.-]+\.json)`:\s*$", prev[0]) if prev else None
        if f:
            text = "\n".join(t for _, t in body)
            out.append("_doc_run %d %s %s" % (start, q("(writes %s)" % f.group(1)),
                       q("cat >%s <<'JSON'\n%s\nJSON" % (f.group(1), text))))
        continue
    if lang not in ("sh", "sql"):
        continue
    if skip:
        out.append("echo %s" % q("# skipped %s:%d: %s" % (doc, start, skip)))
        continue
    if lang == "sql":
        text = "\n".join(t for _, t in body)
        out.append("_doc_run %d %s %s" % (start, q(text.strip().split("\n")[0][:70]),
                   q("sqlite3 -readonly -bail var/medthink.db >/dev/null <<'SQL'\n" + text + "\nSQL")))
        continue
    k = 0
    while k < len(body):
        ln, text = body[k]
        while text.rstrip().endswith("\\") and k + 1 < len(body):
            k += 1
            text = text.rstrip()[:-1] + " " + body[k][1].strip()
        k += 1
        if not text.strip() or text.strip().startswith("#"):
            continue
        run, why = rewrite(text)
        if run is None:
            out.append("echo %s" % q("# skipped %s:%d: %s (%s)" % (doc, ln, text.strip(), why)))
            continue
        out.append("_doc_run %d %s %s" % (ln, q(text.strip()), q(run)))
print("\n".join(out))
PY
  cat >"$root/doc.inc" <<INC
_doc_daemon_pid=
_doc_n=0
# _doc_run LINE SHOWN CODE: runs CODE in this shell; stops the doc on failure.
_doc_run() {
  _doc_n=\$((_doc_n + 1))
  echo "# $doc:\$1: \$2"
  if ! eval "\$3" >>"$root/out.log" 2>&1; then
    echo "not ok - $doc:\$1: \$2"
    tail -n 8 "$root/out.log" | sed 's/^/#   /'
    exit 1
  fi
}
_doc_daemon_wait() {
  echo "\$_doc_daemon_pid" >>"$root/bgpids"
  i=0
  until "$BIN/medthink" health >/dev/null 2>&1; do
    i=\$((i + 1))
    if [ \$i -gt 200 ] || ! kill -0 "\$_doc_daemon_pid" 2>/dev/null; then
      echo "medthinkd did not start"; return 1
    fi
    sleep 0.05
  done
}
_doc_daemon_stop() {
  [ -n "\$_doc_daemon_pid" ] || return 0
  kill "\$_doc_daemon_pid" 2>/dev/null; wait "\$_doc_daemon_pid"
  _doc_daemon_pid=
  return 0
}
_doc_settle() {
  i=0
  while :; do
    s=\$("$BIN/medthink" status "\$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])') || return 1
    case "\$s" in queued|running) ;; *) return 0 ;; esac
    i=\$((i + 1)); [ \$i -gt 3000 ] && { echo "\$1 still \$s"; return 1; }
    sleep 0.1
  done
}
INC
  n=$(grep -c '^_doc_run ' "$root/doc.sh")
  (cd "$root" && timeout 900 sh doc.sh) >"$root/run.log" 2>&1
  rc=$?
  grep -E '^# skipped' "$root/run.log"
  for p in $(cat "$root/bgpids" 2>/dev/null); do _pids="$_pids $p"; kill "$p" 2>/dev/null; done
  if [ $rc -eq 0 ]; then
    ok "$doc: all $n commands ran"
  else
    grep -A9 '^not ok - ' "$root/run.log" | sed 's/^not ok - /#   failed: /'
    [ $rc -eq 124 ] && tail -n 3 "$root/run.log" | sed 's/^/#   timed out after: /'
    nok "$doc: commands ran (see above; log $root/run.log)"
  fi
}

run_doc README.md 0
# The tutorial pauses and cancels a running job: its replies take long enough
# (0.5 s) that a job is still running when the next command comes.
run_doc docs/tutorial.md 500
run_doc docs/tutorial-rl.md 0
[ "$_failed" = 0 ]
