#!/usr/bin/env python3
"""A checker for the Prometheus text exposition format (version 0.0.4) with
the rules of `promtool check metrics` (the text parser plus promlint).

Debian's promtool comes in the `prometheus` package (about 96 MB installed,
the whole server and its web UI), too much to pull in for one lint, so the
tests use this instead. Usage: promlint.py [FILE] (default stdin). Prints one
problem a line, `NAME: problem` (as promtool does), and exits 1 when there
is any, 0 when the text is clean.

Checked:
- syntax: metric and label names, quoted label values and their escapes,
  float values, optional integer timestamps; HELP/TYPE lines well formed;
- a family's lines form one group: HELP and TYPE at most once each, before
  its samples, and no sample of a family after another family has started;
- every family has HELP and TYPE;
- no series (name and labels) twice;
- counters end in `_total`, nothing else does; `_bucket`/`_sum`/`_count`
  only on histograms (and `_sum`/`_count` on summaries); `le` only on
  histogram buckets, `quantile` only on summaries;
- histograms: every bucket has `le`, buckets are cumulative, `+Inf` is
  present and equals `_count`, `_sum` and `_count` are present;
- names: no camelCase, no `:`, no type in the name, base units (seconds,
  bytes) and no abbreviated units (`_ms`, `_sec`, `_kb`, ...).
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
ABBREV = {"s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d"}
NON_BASE = {
    "microseconds": "seconds", "milliseconds": "seconds", "nanoseconds": "seconds",
    "minutes": "seconds", "hours": "seconds", "days": "seconds", "weeks": "seconds",
    "kilobytes": "bytes", "megabytes": "bytes", "gigabytes": "bytes",
    "kilobits": "bytes", "megabits": "bytes",
}


def parse_labels(s, i, lineno):
    """Parses {a="x",b="y"} from s[i] == '{'; returns (dict, next index)."""
    labels = {}
    i += 1
    while True:
        while i < len(s) and s[i] == " ":
            i += 1
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        if not m:
            raise ValueError("line %d: bad label name at column %d" % (lineno, i + 1))
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise ValueError("line %d: expected =\" after label %s" % (lineno, name))
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise ValueError("line %d: unterminated label value" % lineno)
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ValueError("line %d: bad escape \\%s in label value" % (lineno, nxt))
                val.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
                i += 2
                continue
            if c == '"':
                i += 1
                break
            val.append(c)
            i += 1
        if name in labels:
            raise ValueError("line %d: label %s twice" % (lineno, name))
        labels[name] = "".join(val)
        if i < len(s) and s[i] == ",":
            i += 1
        elif i < len(s) and s[i] == "}":
            pass
        else:
            raise ValueError("line %d: expected , or } after a label" % lineno)


def parse_value(v):
    if v in ("+Inf", "Inf"):
        return math.inf
    if v == "-Inf":
        return -math.inf
    if v == "NaN":
        return math.nan
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", v):
        raise ValueError(v)
    return float(v)


def family_of(name, types):
    """The family a sample name belongs to (histogram/summary suffixes)."""
    if name in types:
        return name
    for suf, kinds in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                       ("_count", ("histogram", "summary"))):
        if name.endswith(suf) and types.get(name[: -len(suf)]) in kinds:
            return name[: -len(suf)]
    return name


def check(text):
    problems = []
    helps, types = {}, {}
    samples = {}      # family -> [(name, labels, value)]
    seen_series = set()
    started = []      # families in the order their first line came
    closed = set()    # families another family has followed
    current = None

    def enter(fam, lineno):
        nonlocal current
        if fam == current:
            return
        if fam in closed or fam in started:
            problems.append("%s: line %d: the family's lines are not one group (it appeared "
                            "before another family)" % (fam, lineno))
        if current is not None:
            closed.add(current)
        if fam not in started:
            started.append(fam)
        current = fam

    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3 or not NAME.fullmatch(parts[2]):
                    problems.append("line %d: %s line without a valid metric name" % (lineno, parts[1]))
                    continue
                name = parts[2]
                rest = parts[3] if len(parts) > 3 else ""
                if parts[1] == "HELP":
                    if name in helps:
                        problems.append("%s: second HELP line" % name)
                    helps[name] = rest
                    enter(name, lineno)
                else:
                    if name in types:
                        problems.append("%s: second TYPE line" % name)
                    if rest not in TYPES:
                        problems.append("%s: unknown type %r" % (name, rest))
                    if samples.get(name):
                        problems.append("%s: TYPE line after the family's samples" % name)
                    types[name] = rest
                    enter(name, lineno)
            continue
        m = NAME.match(line)
        if not m:
            problems.append("line %d: not a sample: %r" % (lineno, line[:80]))
            continue
        name = m.group(0)
        i = m.end()
        labels = {}
        try:
            if i < len(line) and line[i] == "{":
                labels, i = parse_labels(line, i, lineno)
            rest = line[i:].split()
            if not rest or len(rest) > 2 or line[i:i + 1] not in (" ", "\t"):
                raise ValueError("line %d: expected a value after the name and labels" % lineno)
            try:
                value = parse_value(rest[0])
            except ValueError:
                raise ValueError("line %d: %r is not a float value" % (lineno, rest[0]))
            if len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1]):
                raise ValueError("line %d: timestamp %r is not an integer" % (lineno, rest[1]))
        except ValueError as e:
            problems.append("%s: %s" % (name, e))
            continue
        fam = family_of(name, types)
        enter(fam, lineno)
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            problems.append("%s: series %s seen twice" % (name, dict(labels)))
        seen_series.add(key)
        samples.setdefault(fam, []).append((name, labels, value))

    for fam in started:
        t = types.get(fam)
        if fam not in helps:
            problems.append("%s: no help text" % fam)
        if t is None:
            problems.append("%s: no TYPE line" % fam)
        lint_name(fam, t, problems)
        for name, labels, _ in samples.get(fam, []):
            for ln in labels:
                if re.search(r"[A-Z]", ln):
                    problems.append("%s: label names should be written in 'snake_case' not 'camelCase'" % fam)
            if "le" in labels and not (t == "histogram" and name == fam + "_bucket"):
                problems.append("%s: label \"le\" is reserved for histogram buckets" % fam)
            if "quantile" in labels and t != "summary":
                problems.append("%s: label \"quantile\" is reserved for summaries" % fam)
        if t == "histogram":
            check_histogram(fam, samples.get(fam, []), problems)
    return problems


def lint_name(fam, t, problems):
    if ":" in fam:
        problems.append("%s: metric names should not contain ':'" % fam)
    if re.search(r"[A-Z]", fam):
        problems.append("%s: metric names should be written in 'snake_case' not 'camelCase'" % fam)
    if t == "counter" and not fam.endswith("_total"):
        problems.append("%s: counter metrics should have \"_total\" suffix" % fam)
    if t != "counter" and fam.endswith("_total"):
        problems.append("%s: non-counter metrics should not have \"_total\" suffix" % fam)
    if t not in ("histogram", "summary"):
        for suf in ("_bucket", "_count", "_sum"):
            if fam.endswith(suf):
                problems.append("%s: non-histogram and non-summary metrics should not have "
                                "\"%s\" suffix" % (fam, suf))
    parts = fam.split("_")
    for p in parts:
        if p in ("counter", "gauge", "histogram", "summary", "untyped"):
            problems.append("%s: metric name should not include type '%s'" % (fam, p))
        if p in ABBREV:
            problems.append("%s: metric names should not contain abbreviated units (%s)" % (fam, p))
        if p in NON_BASE:
            problems.append("%s: use base unit \"%s\" instead of \"%s\"" % (fam, NON_BASE[p], p))


def check_histogram(fam, rows, problems):
    series = {}
    for name, labels, value in rows:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if name == fam + "_bucket":
            if "le" not in labels:
                problems.append("%s: bucket without an \"le\" label" % fam)
                continue
            try:
                le = parse_value(labels["le"])
            except ValueError:
                problems.append("%s: le=%r is not a float" % (fam, labels["le"]))
                continue
            s["buckets"].append((le, value))
        elif name == fam + "_sum":
            s["sum"] = value
        elif name == fam + "_count":
            s["count"] = value
        else:
            problems.append("%s: sample %s in a histogram" % (fam, name))
    for rest, s in series.items():
        where = "%s%s" % (fam, dict(rest) if rest else "")
        b = sorted(s["buckets"])
        if not b or b[-1][0] != math.inf:
            problems.append("%s: no +Inf bucket" % where)
        for (le1, v1), (le2, v2) in zip(b, b[1:]):
            if le1 == le2:
                problems.append("%s: bucket le=%g twice" % (where, le1))
            if v2 < v1:
                problems.append("%s: buckets are not cumulative (le=%g has %g, le=%g has %g)"
                                % (where, le1, v1, le2, v2))
        if s["count"] is None:
            problems.append("%s: no _count" % where)
        if s["sum"] is None:
            problems.append("%s: no _sum" % where)
        if b and s["count"] is not None and b[-1][0] == math.inf and b[-1][1] != s["count"]:
            problems.append("%s: _count %g differs from the +Inf bucket %g" % (where, s["count"], b[-1][1]))


def main():
    text = open(sys.argv[1], encoding="utf-8").read() if len(sys.argv) > 1 else sys.stdin.read()
    problems = check(text)
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
