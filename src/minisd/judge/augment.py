"""Light sketch augmentation so the judge scores the class, not the pixels' style.

Generated sketches differ from the training line art in ways that say nothing about the class:
strokes a little thicker, thinner, greyer or blurrier, the object a little shifted or scaled.
The judge sees such variants during training so those differences do not flip its answer.
All randomness comes from the caller's numpy Generator: same seed, same batches.
"""

from __future__ import annotations

import cv2
import numpy as np

_KERNEL = np.ones((2, 2), np.uint8)


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random variant of a uint8 black-on-white sketch, same size."""
    h, w = image.shape
    out = image
    r = rng.random()
    if r < 0.3:
        out = cv2.erode(out, _KERNEL)  # min filter: dark ink grows thicker
    elif r < 0.45:
        out = cv2.dilate(out, _KERNEL)  # max filter: ink thins

    angle = rng.uniform(-8, 8)
    scale = rng.uniform(0.8, 1.15)
    shift = rng.uniform(-0.12, 0.12, size=2) * (w, h)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    matrix[:, 2] += shift
    out = cv2.warpAffine(out, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)

    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.2))
    if rng.random() < 0.3:  # greyer ink, as an undertrained decoder draws it
        ink = (255.0 - out.astype(np.float32)) * rng.uniform(0.55, 1.0)
        out = (255.0 - ink).round().astype(np.uint8)
    if rng.random() < 0.2:
        noise = rng.normal(0.0, rng.uniform(2, 16), size=out.shape)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).round().astype(np.uint8)
    return out


def augment_batch(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.stack([augment(im, rng) for im in images])
