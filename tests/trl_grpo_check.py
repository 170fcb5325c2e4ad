#!/usr/bin/env python3
"""Checks a `grpo` export of an rl job against what TRL's GRPOTrainer reads,
with the standard library only (no datasets, no trl).

GRPOTrainer takes a dataset with a "prompt" column; a conversational prompt
is a list of {"role","content"} messages, and for a vision model a message's
content is a list of parts ({"type":"image"} placeholders and
{"type":"text","text":...}) with the images in an "images" column, one per
placeholder, in order. Every other column ("solution", "answer", "id") is
handed to the reward functions as a keyword argument; MedVLM-R1's accuracy
reward reads "solution". `datasets` builds one Arrow schema from the JSON
lines, so every record must have the same keys with the same JSON types.

Usage: trl_grpo_check.py FILE.jsonl [EXPECTED_RECORDS]; prints "ok N" and
exits 0, or prints what is wrong and exits 1.
"""
import base64
import json
import sys

MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"RIFF")


def shape(v):
    """The JSON type tree of v, as datasets would infer columns from it."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in sorted(v.items())}
    if isinstance(v, list):
        return ["list"]
    return type(v).__name__


def check(rec, n):
    where = "record %d" % n
    prompt = rec.get("prompt")
    assert isinstance(prompt, list) and prompt, where + ": prompt must be a non-empty list of messages"
    for m in prompt:
        assert isinstance(m, dict) and set(m) == {"role", "content"}, where + ": message keys %r" % m
        assert m["role"] in ("system", "user", "assistant"), where + ": role %r" % m["role"]
    assert prompt[-1]["role"] == "user", where + ": the prompt must end with the user turn"
    content = prompt[-1]["content"]
    assert isinstance(content, list), where + ": content must be a list of parts"
    images = rec.get("images")
    assert isinstance(images, list), where + ": images must be a list"
    n_img = 0
    texts = []
    for part in content:
        assert part.get("type") in ("image", "text"), where + ": part type %r" % part
        if part["type"] == "image":
            assert set(part) == {"type"}, where + ": an image part is a placeholder only"
            n_img += 1
        else:
            assert isinstance(part.get("text"), str) and part["text"].strip(), where + ": empty text"
            texts.append(part["text"])
    assert len(texts) == 1, where + ": one text part"
    assert n_img == len(images), where + ": %d placeholders for %d images" % (n_img, len(images))
    for url in images:
        assert url.startswith("data:image/") and ";base64," in url, where + ": image %r..." % url[:40]
        raw = base64.b64decode(url.split(",", 1)[1], validate=True)
        assert raw.startswith(MAGIC), where + ": image bytes are not an image"
    sol = rec.get("solution")
    assert isinstance(sol, str) and len(sol) == 1 and sol in "ABCDEFGHIJ", where + ": solution %r" % sol
    assert rec.get("answer") == sol, where + ": answer %r beside solution %r" % (rec.get("answer"), sol)
    text = texts[0]
    assert "<think>...</think>" in text and "<answer>...</answer>" in text, where + ": not the R1 prompt"


def main():
    recs = []
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            if line.strip():
                recs.append(json.loads(line))
    try:
        for i, r in enumerate(recs, 1):
            check(r, i)
        shapes = {json.dumps(shape({k: v for k, v in r.items() if k != "images"})) for r in recs}
        # parts differ in keys (image placeholders lack "text"): Arrow makes
        # one struct of the union with nulls, which TRL accepts
        assert len(shapes) <= 1, "records differ in columns or types: %s" % shapes
        if len(sys.argv) > 2:
            assert len(recs) == int(sys.argv[2]), "%d records, expected %s" % (len(recs), sys.argv[2])
    except AssertionError as e:
        print("not ok: %s" % e)
        return 1
    print("ok %d" % len(recs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
