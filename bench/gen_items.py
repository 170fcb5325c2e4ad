#!/usr/bin/env python3
"""Synthetic medical multiple-choice items for the benchmarks (not real data).

    gen_items.py N OUT.jsonl [--seed S] [--prefix P] [--pad BYTES]
    gen_items.py N OUT.jsonl --bodies BODIES.jsonl [--model M]

Writes N items in the native JSONL format (docs/formats.md): id, question,
four options, answer, topic. Items are deterministic for a seed and all
distinct (the id and the question carry the prefix and item number), about 460 bytes a
line, so one million items make a file of about 460 MB. --pad BYTES adds a
"context" of that many bytes to each item (token-heavy prompts).

With --bodies it also writes, for each item, a chat-completions request body
shaped like the daemon's explain call (system + user message built from
conf/prompts/explain.txt), one JSON object a line: the fallback for the
baselines when the daemon's own request bodies cannot be read from its store.
"""
import json
import os
import sys

TOPICS = ["cardiology", "gastroenterology", "nephrology", "neurology", "pharmacology",
          "infectious disease", "endocrinology", "hematology", "pulmonology", "pediatrics"]
FINDINGS = ["fever and productive cough", "crushing chest pain radiating to the left arm",
            "jaundice and pruritus", "polyuria and polydipsia", "a resting tremor",
            "bloody diarrhea", "a new systolic murmur", "periorbital edema",
            "sudden painless vision loss", "a pruritic rash on the flexor surfaces"]
DRUGS = ["Amoxicillin", "Metoprolol", "Lactulose", "Metformin", "Levodopa", "Mesalamine",
         "Furosemide", "Prednisone", "Vancomycin", "Insulin glargine", "Warfarin", "Omeprazole"]


def lcg(x):
    return (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF


PAD_SENTENCE = ("The referring physician notes that the history, the examination and the "
                "initial laboratory panel were reviewed twice and documented in full. ")


def item(i, seed, prefix, pad=0):
    r = lcg(i * 2654435761 + seed + 1)
    age = 18 + (r >> 33) % 70
    sex = "man" if (r >> 20) & 1 else "woman"
    f = FINDINGS[(r >> 8) % len(FINDINGS)]
    topic = TOPICS[(r >> 40) % len(TOPICS)]
    d0 = (r >> 16) % len(DRUGS)
    opts = {}
    for k, key in enumerate("ABCD"):
        opts[key] = DRUGS[(d0 + k * 5) % len(DRUGS)]
    ans = "ABCD"[(r >> 50) % 4]
    q = ("Case %s%d. A %d-year-old %s presents with %s for %d days. Vital signs show a "
         "temperature of 37.%d C and a pulse of %d/min. Laboratory studies are ordered and "
         "the findings are consistent with the suspected diagnosis. Which of the following "
         "is the most appropriate next step in management?"
         % (prefix, i, age, sex, f, 1 + (r >> 44) % 14, (r >> 24) % 10, 60 + (r >> 28) % 60))
    it = {"id": "%s%d" % (prefix, i), "question": q}
    if pad > 0:
        it["context"] = ("Record %d. " % i + PAD_SENTENCE * (pad // len(PAD_SENTENCE) + 1))[:pad]
    it.update({"options": opts, "answer": ans, "topic": topic})
    return it


def render_explain(tmpl, it):
    """A small renderer of the template convention of conf/prompts/*.txt:
    `{#mc}...{/mc}` sections kept for multiple-choice items, `{#open}`,
    `{#context}`, `{#explanation}` dropped, `{name}` substituted."""
    import re
    sys_part, user_part = tmpl.split("---user---\n", 1)
    sys_part = "\n".join(l for l in sys_part.splitlines() if not l.startswith("# medthink"))

    def sect(text):
        text = re.sub(r"\{#mc\}(.*?)\{/mc\}", r"\1", text, flags=re.S)
        for name in ("open", "context", "explanation"):
            text = re.sub(r"\{#%s\}.*?\{/%s\}" % (name, name), "", text, flags=re.S)
        opts = "\n".join("%s. %s" % (k, v) for k, v in it["options"].items())
        for k, v in (("question", it["question"]), ("options", opts), ("gold", it["answer"]),
                     ("gold_text", it["options"][it["answer"]])):
            text = text.replace("{%s}" % k, v)
        return text.strip()
    return [{"role": "system", "content": sect(sys_part)},
            {"role": "user", "content": sect(user_part)}]


def main(argv):
    args = list(argv[1:])
    seed, prefix, bodies, model, pad = 1, "syn-", None, "sim-teacher", 0
    pos = []
    while args:
        a = args.pop(0)
        if a == "--seed":
            seed = int(args.pop(0))
        elif a == "--prefix":
            prefix = args.pop(0)
        elif a == "--bodies":
            bodies = args.pop(0)
        elif a == "--pad":
            pad = int(args.pop(0))
        elif a == "--model":
            model = args.pop(0)
        else:
            pos.append(a)
    if len(pos) != 2:
        sys.stderr.write(__doc__)
        return 2
    n, out = int(pos[0]), pos[1]
    tmpl = None
    if bodies:
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "conf", "prompts", "explain.txt")) as f:
            tmpl = f.read()
    bf = open(bodies, "w") if bodies else None
    with open(out, "w", buffering=1 << 20) as f:
        for i in range(n):
            it = item(i, seed, prefix, pad)
            f.write(json.dumps(it, separators=(",", ":")) + "\n")
            if bf:
                body = {"model": model, "messages": render_explain(tmpl, it),
                        "temperature": 0.2, "max_tokens": 1024}
                bf.write(json.dumps(body, separators=(",", ":"), ensure_ascii=False) + "\n")
    if bf:
        bf.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
