#!/usr/bin/env python3
"""Writes small image + mask PNG pairs for the refer tests (standard library
only: zlib + struct). Usage: refer_pngs.py DIR [N]

DIR/img/caseK.png: a gray 48x40 image with bright blobs where the lesions are
(a background pattern of its own for each K, so no two requests are alike).
DIR/mask/caseK.png: a 8-bit gray mask. Cases (K = 0..N-1 cycle through):
  0: binary mask (255), three lesions: upper left 3x3, central 4x4, lower right 6x5
  1: label map (values 1 and 2), two equal lesions touching by an edge, both "left"
  2: binary mask, one lone pixel lesion in the lower left
Also writes DIR/bad/ with broken pairs for the error tests:
  size/      mask 40x40 for a 48x40 image
  empty/     an all-zero mask
  notpng/    an image that is a JPEG by its first bytes
  big/       a 4097x1 image and mask
"""
import os
import struct
import sys
import zlib

W, H = 48, 40


def png(path, w, h, rows, color=False):
    def chunk(t, data):
        c = struct.pack(">I", len(data)) + t + data
        return c + struct.pack(">I", zlib.crc32(t + data) & 0xffffffff)
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2 if color else 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def rects(case):
    if case == 0:
        return [(2, 2, 3, 3, 255), (22, 18, 4, 4, 255), (40, 33, 6, 5, 255)]
    if case == 1:
        return [(6, 15, 5, 5, 1), (11, 15, 5, 5, 2)]
    return [(3, 36, 1, 1, 255)]


def write_pair(d, name, case, w=W, h=H, mask_w=None, empty=False, salt=0):
    mask_w = mask_w or w
    m = [[0] * mask_w for _ in range(h)]
    img = [[40 + (x * 3 + y + salt * 7) % 20 + salt // 3 % 16 for x in range(w)] for y in range(h)]
    if not empty:
        for (x0, y0, rw, rh, v) in rects(case):
            for y in range(y0, y0 + rh):
                for x in range(x0, x0 + rw):
                    if x < mask_w:
                        m[y][x] = v
                    if x < w:
                        img[y][x] = 200
    os.makedirs(os.path.join(d, "img"), exist_ok=True)
    os.makedirs(os.path.join(d, "mask"), exist_ok=True)
    png(os.path.join(d, "img", name), w, h, img)
    png(os.path.join(d, "mask", name), mask_w, h, m)


def main():
    d = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    for k in range(n):
        write_pair(d, "case%d.png" % k, k % 3, salt=k)
    b = os.path.join(d, "bad")
    write_pair(os.path.join(b, "size"), "a.png", 0, mask_w=40)
    write_pair(os.path.join(b, "empty"), "a.png", 0, empty=True)
    write_pair(os.path.join(b, "notpng"), "a.png", 0)
    with open(os.path.join(b, "notpng", "img", "a.png"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0" + b"\0" * 64)
    os.makedirs(os.path.join(b, "big", "img"), exist_ok=True)
    os.makedirs(os.path.join(b, "big", "mask"), exist_ok=True)
    png(os.path.join(b, "big", "img", "a.png"), 4097, 1, [[0] * 4097])
    png(os.path.join(b, "big", "mask", "a.png"), 4097, 1, [[255] * 4097])


if __name__ == "__main__":
    main()
