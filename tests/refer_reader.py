#!/usr/bin/env python3
"""Reads the refer job's exports as their users would, with the standard
library only, and checks them (docs/refer.md). Exit 0 when valid, else 1
with the problems on stderr. Prints a one-line summary.

usage: refer_reader.py refcoco FILE.json
       refer_reader.py lvit FILE.csv [REFCOCO.json]   (cross-checks the two)
"""
import csv
import json
import sys

problems = []


def need(cond, what):
    if not cond:
        problems.append(what)
    return cond


def rle_pixels(seg):
    """Decodes COCO's uncompressed RLE into the set of (x, y) pixels."""
    h, w = seg["size"]
    px, pos, val = set(), 0, 0
    for run in seg["counts"]:
        if val:
            for p in range(pos, pos + run):
                px.add((p // h, p % h))  # column-major: x = p // h, y = p % h
        pos += run
        val ^= 1
    need(pos == h * w, "RLE counts sum to %d, not %d" % (pos, h * w))
    return px


def read_refcoco(path):
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    need(isinstance(d, dict) and set(d) >= {"refs", "images", "annotations", "categories"},
         "top level has refs, images, annotations, categories")
    images = {i["id"]: i for i in d["images"]}
    anns = {a["id"]: a for a in d["annotations"]}
    cats = {c["id"] for c in d["categories"]}
    need(len(images) == len(d["images"]) and len(anns) == len(d["annotations"]), "unique ids")
    for a in d["annotations"]:
        need(a["image_id"] in images, "annotation %d: image exists" % a["id"])
        need(a["category_id"] in cats, "annotation %d: category exists" % a["id"])
        img = images.get(a["image_id"], {})
        seg = a["segmentation"]
        need(seg["size"] == [img.get("height"), img.get("width")], "annotation %d: RLE size is the image's" % a["id"])
        px = rle_pixels(seg)
        need(len(px) == a["area"], "annotation %d: area %s is the RLE's %d pixels" % (a["id"], a["area"], len(px)))
        if px:
            xs = [p[0] for p in px]
            ys = [p[1] for p in px]
            box = [min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1]
            need(a["bbox"] == box, "annotation %d: bbox %s is the RLE's %s" % (a["id"], a["bbox"], box))
        need(a["iscrowd"] == 0, "iscrowd 0")
    sents = 0
    for r in d["refs"]:
        need(r["ann_id"] in anns, "ref %d: annotation exists" % r["ref_id"])
        need(anns.get(r["ann_id"], {}).get("image_id") == r["image_id"], "ref %d: same image as its annotation" % r["ref_id"])
        need(r["split"] in ("train", "val"), "ref %d: split" % r["ref_id"])
        need(len(r["sentences"]) >= 1 and len(r["sent_ids"]) == len(r["sentences"]), "ref %d: sentences" % r["ref_id"])
        for s in r["sentences"]:
            need(s["raw"].strip() != "", "a raw sentence")
            need(s["tokens"] and all(t == t.lower() for t in s["tokens"]), "tokens lower case")
            need(s["sent"] == " ".join(s["tokens"]), "sent is the tokens joined")
            sents += 1
    print("refcoco: %d images, %d annotations, %d refs, %d sentences" % (len(images), len(anns), len(d["refs"]), sents))
    return d


def read_lvit(path, refcoco=None):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    need(rows and list(rows[0].keys())[:2] == ["Image", "Description"], "columns Image, Description first")
    names = [r["Image"] for r in rows]
    need(len(set(names)) == len(names), "one row per Image")
    for r in rows:
        need(r["Image"].endswith("_%s.png" % r["Region"]), "Image names the region: %s" % r["Image"])
        need(r["Description"].strip() != "", "a description")
        need(r["Split"] in ("train", "val"), "split")
    if refcoco is not None:
        firsts = sorted(r["sentences"][0]["raw"] for r in refcoco["refs"])
        need(sorted(r["Description"] for r in rows) == firsts, "one row per ref, its first sentence")
    print("lvit: %d rows" % len(rows))


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if sys.argv[1] == "refcoco":
            read_refcoco(sys.argv[2])
        else:
            rc = None
            if len(sys.argv) > 3:
                with open(sys.argv[3], encoding="utf-8") as f:
                    rc = json.load(f)
            read_lvit(sys.argv[2], rc)
    except (OSError, ValueError, KeyError, TypeError) as e:
        problems.append("unreadable: %r" % (e,))
    for p in problems:
        print("problem: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
