"""Classify an image with the exported network, as `depthlab classify` does.

    python predict.py IMAGE [--top K] [--json]
    python predict.py --row V1,V2,... [--top K] [--json]   (tabular data)

The image goes through the lab's own steps: it is decoded, resized to the
network's input with the triangle (bilinear) filter of the Rust `image`
crate, made grey (Rec. 709 luma) or RGB as that crate does, both
reproduced here to the bit; scaled to [0, 1]; and normalised with the
training set's MEAN and STD. With --json the output has the shape of
`depthlab classify --json`.

A network trained on a table (CSV) takes a row of feature values instead,
in the training file's column order without the label: each is scaled by
its range over the training rows (FEATURE_MIN, FEATURE_MAX) and
normalised, in float32 as the lab does.
"""

import argparse
import json
import sys

import numpy as np
import torch
from PIL import Image

from model import (CLASS_NAMES, FEATURE_MAX, FEATURE_MIN, FEATURE_NAMES,
                   INPUT_SHAPE, MEAN, STD, load_model)

# The weights of red, green and blue in the `image` crate's grey: the
# luminance it derives for sRGB (Rec. 709 primaries), as float32.
LUMA_WEIGHTS = tuple(np.float32(w)
                     for w in (0.21264784, 0.7151792, 0.07217304))


def decode(path):
    """The image as an [H, W, C] array, in the colour type the lab decodes
    it to: grey, grey + alpha, RGB or RGBA; uint8, or uint16 for a 16-bit
    grey image (kept at 16 bits until after resizing, as the lab does)."""
    image = Image.open(path)
    if image.mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(image).astype(np.uint16)[:, :, None]
    if image.mode == "P":
        has_alpha = "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGB")
    pixels = np.asarray(image)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def resample(pixels, new_size, axis):
    """Resamples float32 `pixels` to `new_size` along `axis` with the
    `image` crate's triangle filter: the same sample positions, weights
    and float32 sums in the same order."""
    size = pixels.shape[axis]
    one, half = np.float32(1), np.float32(0.5)
    ratio = np.float32(size) / np.float32(new_size)
    scale = max(ratio, one)
    support = one * scale
    rows = []
    for out in range(new_size):
        centre = (np.float32(out) + half) * ratio
        left = min(max(int(np.floor(centre - support)), 0), size - 1)
        right = min(max(int(np.ceil(centre + support)), left + 1), size)
        centre = centre - half
        weights = []
        for i in range(left, right):
            distance = abs((np.float32(i) - centre) / scale)
            weights.append(one - distance if distance < one else 0)
        total = np.float32(0)
        for w in weights:
            total = np.float32(total + w)
        row = np.zeros(np.take(pixels, 0, axis).shape, np.float32)
        for i, w in zip(range(left, right), weights):
            row += np.take(pixels, i, axis) * np.float32(w / total)
        rows.append(row)
    return np.stack(rows, axis)


def resize(pixels, height, width):
    """`image::imageops::resize` with `FilterType::Triangle`: rows first,
    then columns, rounded to the nearest value of the image's own depth
    (8 or 16 bits) only at the end."""
    if pixels.shape[:2] == (height, width):
        return pixels
    top = np.iinfo(pixels.dtype).max
    rows = resample(pixels.astype(np.float32), height, 0)
    both = resample(rows, width, 1).astype(np.float64)
    return np.floor(np.clip(both, 0, top) + 0.5).astype(pixels.dtype)


def to_bytes(pixels):
    """16-bit values as the `image` crate makes bytes of them:
    round(v * 255 / 65535), computed as (v + 128) // 257."""
    if pixels.dtype == np.uint8:
        return pixels
    return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)


def to_channels(pixels, channels):
    """Grey or RGB as the `image` crate converts: alpha is dropped; grey is
    the Rec. 709 luma of the values scaled to [0, 1], in float32, rounded
    to the nearest byte."""
    colour = pixels.shape[2] >= 3
    if channels == 1:
        if not colour:
            return pixels[:, :, :1]
        scale = np.float32(1) / np.float32(255)
        luma = np.zeros(pixels.shape[:2], np.float32)
        for channel, weight in enumerate(LUMA_WEIGHTS):
            luma += pixels[:, :, channel].astype(np.float32) * scale * weight
        grey = np.floor((luma * np.float32(255)).astype(np.float64) + 0.5)
        return np.clip(grey, 0, 255).astype(np.uint8)[:, :, None]
    if colour:
        return pixels[:, :, :3]
    return np.repeat(pixels[:, :, :1], 3, axis=2)


def prepare(path):
    """The image as the network's input: a [1, C, H, W] float32 tensor."""
    channels, height, width = INPUT_SHAPE
    pixels = to_channels(to_bytes(resize(decode(path), height, width)),
                         channels)
    planes = pixels.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    mean = np.array(MEAN, np.float32)[:, None, None]
    std = np.array(STD, np.float32)[:, None, None]
    return torch.from_numpy((planes - mean) / std).unsqueeze(0)


def prepare_row(text):
    """A row of feature values as the network's input: [1, F, 1, 1]."""
    cells = [c.strip() for c in text.split(",")]
    if len(cells) != len(FEATURE_NAMES):
        raise ValueError(f"{len(cells)} values for {len(FEATURE_NAMES)} "
                         f"features ({', '.join(FEATURE_NAMES)})")
    values = np.array([float(c) for c in cells], np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("every feature needs a finite number")
    values = values.astype(np.float32)
    low = np.array(FEATURE_MIN, np.float32)
    span = np.array(FEATURE_MAX, np.float32) - low
    offset = values - low
    unit = np.where(span > 0, offset / np.where(span > 0, span, 1), offset)
    normalised = (unit - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return torch.from_numpy(normalised.astype(np.float32)).reshape(1, -1, 1, 1)


def predictions(model, image):
    """Every class with its probability, most probable first."""
    with torch.no_grad():
        probabilities = torch.softmax(model(image), dim=1)[0].tolist()
    order = sorted(range(len(probabilities)), key=lambda i: -probabilities[i])
    return [{"class": CLASS_NAMES[i], "index": i,
             "probability": probabilities[i]} for i in order]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", help="the image to classify")
    parser.add_argument("--row", help="the row of feature values to "
                        "classify (a network trained on a table)")
    parser.add_argument("--top", type=int, default=5,
                        help="how many classes to print")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    if (args.image is None) == (args.row is None):
        parser.error("give an image or --row, not both")
    if args.row is not None:
        if FEATURE_NAMES is None:
            sys.exit("error: this network was trained on images: give an image")
        try:
            image = prepare_row(args.row)
        except ValueError as error:
            sys.exit(f"error: --row {args.row}: {error}")
        what = f"the row {args.row}"
    else:
        if FEATURE_NAMES is not None:
            sys.exit("error: this network was trained on a table: give --row")
        try:
            image = prepare(args.image)
        except (OSError, ValueError) as error:
            sys.exit(f"error: {args.image}: cannot read the image: {error}")
        shape = "x".join(str(n) for n in INPUT_SHAPE)
        what = f"{args.image} as {shape}"
    top = predictions(load_model(), image)[:max(args.top, 1)]
    if args.json:
        print(json.dumps({"image": args.image, "row": args.row,
                          "input": list(INPUT_SHAPE),
                          "predictions": top}, indent=2))
        return
    print(what)
    for rank, p in enumerate(top, 1):
        bar = "#" * int(p["probability"] * 40 + 0.5)
        print(f"{rank:>2}. {p['class']:<14} {p['probability'] * 100:>6.2f}%"
              f"  {bar}")


if __name__ == "__main__":
    main()
