"""Tiny line-art shards for the VAE tests: a few shapes drawn with OpenCV, deterministic."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from minisd.shards import Sample, write_split


def drawn_images(count: int, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = np.full((count, size, size), 255, np.uint8)
    for image in images:
        for _ in range(rng.integers(1, 3)):
            kind = rng.integers(3)
            a, b = rng.integers(2, size - 2, 2), rng.integers(2, size - 2, 2)
            if kind == 0:
                cv2.line(image, tuple(map(int, a)), tuple(map(int, b)), 0, 1)
            elif kind == 1:
                cv2.circle(image, tuple(map(int, a)), int(rng.integers(3, size // 3)), 0, 1)
            else:
                cv2.rectangle(image, tuple(map(int, a)), tuple(map(int, b)), 0, 1)
    return images


def make_shards(folder: Path, train: int = 48, val: int = 8, size: int = 32) -> Path:
    for split, count, seed in (("train", train, 0), ("val", val, 1)):
        samples = [
            Sample(key=f"{split}{i:04d}", image=image, captions=[f"shape {i}"])
            for i, image in enumerate(drawn_images(count, size, seed))
        ]
        write_split(samples, folder, split, num_shards=2)
    return folder
