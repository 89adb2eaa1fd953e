"""The tests' one maker of sketches (`doodle`), and labelled sample lists and shards made of them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from minisd.attributes import measure
from minisd.shards import Sample, write_split

SHAPES = ("circle", "square", "cross", "triangle")


def doodle(seed: int | np.random.Generator, size: int = 96, shape: str | None = None) -> np.ndarray:
    """A black-on-white line drawing, the same for the same seed (an int, or a Generator it draws from).

    shape None: a scribble (an open polyline and a circle, 2 px), different for every seed even once
    cropped to its ink, as ingest's near-duplicate gate needs. shape one of SHAPES: that shape at a
    random size and place, a class a classifier can learn, with a size and position `measure` reads.
    """
    rng = np.random.default_rng(seed)
    image = np.full((size, size), 255, np.uint8)
    if shape is None:
        points = rng.integers(size // 8, size - size // 8, size=(6, 2)).astype(np.int32)
        cv2.polylines(image, [points.reshape(-1, 1, 2)], False, 0, 2, cv2.LINE_AA)
        margin = min(20, size // 4)
        cv2.circle(image, tuple(int(v) for v in rng.integers(margin, size - margin, 2)), int(rng.integers(5, 15)), 0, 2)
        return image
    r = rng.uniform(0.12, 0.4) * size
    cx, cy = rng.uniform(r, size - r, size=2)
    t = int(rng.integers(1, 3))
    if shape == "circle":
        cv2.circle(image, (int(cx), int(cy)), int(r), 0, t, cv2.LINE_AA)
    elif shape == "square":
        cv2.rectangle(image, (int(cx - r), int(cy - r)), (int(cx + r), int(cy + r)), 0, t, cv2.LINE_AA)
    elif shape == "cross":
        cv2.line(image, (int(cx - r), int(cy - r)), (int(cx + r), int(cy + r)), 0, t, cv2.LINE_AA)
        cv2.line(image, (int(cx - r), int(cy + r)), (int(cx + r), int(cy - r)), 0, t, cv2.LINE_AA)
    elif shape == "triangle":
        pts = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], np.int32)
        cv2.polylines(image, [pts], True, 0, t, cv2.LINE_AA)
    else:
        raise ValueError(shape)
    return image


def doodle_samples(n: int, seed: int, size: int = 64, classes=SHAPES) -> list[Sample]:
    """n shape doodles, sample i of class classes[i % len(classes)], captioned with its measured size and position."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        kind = classes[i % len(classes)]
        image = doodle(rng, size, kind)
        attributes = measure(image)
        caption = f"a {attributes['size']} {kind} in the {attributes['position']}"
        samples.append(Sample(f"s{seed}_{i:05d}", image, [caption], kind, attributes, "test", "test"))
    return samples


def make_shards(root: Path, n_train: int = 160, n_val: int = 40, size: int = 64) -> Path:
    """root/shards: train in 2 shards, val in 1, of labelled shape doodles."""
    shards = root / "shards"
    write_split(doodle_samples(n_train, 1, size), shards, "train", 2)
    write_split(doodle_samples(n_val, 2, size), shards, "val", 1)
    return shards
