#!/usr/bin/env python3
"""Rebuilds depthlab's embedded datasets under assets/, reproducibly.

fashion-mini: the first 600 training and the first 100 test images of each
of the 10 classes of Fashion-MNIST (Zalando SE, MIT licence), in file order,
from Debian's package `dataset-fashion-mnist`
(/usr/share/datasets/fashion-mnist/*.gz). Written as gzipped IDX files, the
format of the originals, with a fixed gzip timestamp so the bytes repeat.

digits: the 1,797 8x8 handwritten digits that scikit-learn ships
(sklearn/datasets/data/digits.csv.gz, BSD-3), copied as is from the
scikit-learn wheel (`pip download scikit-learn --no-deps`).

Usage: apt-get install dataset-fashion-mnist && python3 scripts/make_assets.py
"""
import glob
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "assets")
FASHION = "/usr/share/datasets/fashion-mnist"
PER_CLASS = {"train": 600, "t10k": 100}
SKLEARN_VERSION = "1.5.2"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    dims = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return magic, shape, data[4 + 4 * dims:]


def write_idx(path, magic, shape, payload):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in shape)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            f.write(header + payload)


def fashion_mini():
    out = os.path.join(ASSETS, "fashion-mini")
    os.makedirs(out, exist_ok=True)
    for split, per_class in PER_CLASS.items():
        _, (n,), labels = read_idx(f"{FASHION}/{split}-labels-idx1-ubyte.gz")
        magic, (n2, h, w), images = read_idx(f"{FASHION}/{split}-images-idx3-ubyte.gz")
        assert n == n2
        taken = {c: 0 for c in range(10)}
        keep = []
        for i, label in enumerate(labels):
            if taken[label] < per_class:
                taken[label] += 1
                keep.append(i)
        size = h * w
        write_idx(f"{out}/{split}-labels-idx1-ubyte.gz", 0x801, [len(keep)], bytes(labels[i] for i in keep))
        write_idx(
            f"{out}/{split}-images-idx3-ubyte.gz",
            magic,
            [len(keep), h, w],
            b"".join(images[i * size:(i + 1) * size] for i in keep),
        )
        print(f"fashion-mini {split}: {len(keep)} images")


def digits():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
             f"scikit-learn=={SKLEARN_VERSION}", "-d", tmp],
            check=True,
        )
        wheel = glob.glob(os.path.join(tmp, "scikit_learn-*.whl"))[0]
        with zipfile.ZipFile(wheel) as z:
            data = z.read("sklearn/datasets/data/digits.csv.gz")
    os.makedirs(os.path.join(ASSETS, "digits"), exist_ok=True)
    with open(os.path.join(ASSETS, "digits", "digits.csv.gz"), "wb") as f:
        f.write(data)
    rows = gzip.decompress(data).decode().strip().splitlines()
    print(f"digits: {len(rows)} images")


SAMPLE_NAMES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]


def write_png(path, pixels, width, height):
    """A greyscale PNG, written by hand so the bytes never depend on a library."""
    import struct
    import zlib

    raw = b"".join(b"\x00" + bytes(pixels[y * width:(y + 1) * width]) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def samples():
    """One PNG per class: the 150th test image of each class, which
    fashion-mini (the first 100 per class) does not contain."""
    _, (n,), labels = read_idx(f"{FASHION}/t10k-labels-idx1-ubyte.gz")
    _, (_, h, w), images = read_idx(f"{FASHION}/t10k-images-idx3-ubyte.gz")
    seen = {c: 0 for c in range(10)}
    out = os.path.join(ASSETS, "samples")
    os.makedirs(out, exist_ok=True)
    for i, label in enumerate(labels):
        seen[label] += 1
        if seen[label] == 150:
            size = h * w
            write_png(os.path.join(out, f"{SAMPLE_NAMES[label]}.png"), images[i * size:(i + 1) * size], w, h)


def main():
    fashion_mini()
    digits()
    samples()
    for path in sorted(glob.glob(os.path.join(ASSETS, "*", "*.gz"))):
        with open(path, "rb") as f:
            print(hashlib.sha256(f.read()).hexdigest()[:16], os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()
