"""Stroke width: do the samples draw lines as thin as the sketches they learned from?

A stroke of length L and width w covers about L * w ink pixels and is outlined by about 2 * L of
contour, so w ~ 2 * ink / contour (exact for straight strokes, rings and open curves alike; no
skeleton needed). A filled blob measures wide, so the width by size also shows whether the small
prompts come out as lines or as blots. Medians, so a few outliers do not move it.
"""

from __future__ import annotations

import cv2
import numpy as np

from minisd.attributes import SIZES, ink_mask, size_word


def stroke_width(gray: np.ndarray) -> float | None:
    """Mean stroke width in pixels of one (H, W) uint8 sketch; None without ink."""
    ink = ink_mask(gray).astype(np.uint8)
    area = int(ink.sum())
    if area == 0:
        return None
    contours, _ = cv2.findContours(ink, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return 2 * area / max(sum(cv2.arcLength(c, True) for c in contours), 1.0)


def _median(widths) -> float | None:
    present = [w for w in widths if w is not None]
    return float(np.median(present)) if present else None


def median_stroke_width(images) -> float | None:
    return _median(stroke_width(im) for im in images)


def stroke_widths(generated: np.ndarray, asked_sizes: list[str | None], real: np.ndarray) -> dict:
    """`stroke_width` of the samples and `stroke_width_real` of the real val sketches, overall and by
    size: the size each sample's prompt asks for, the size each real sketch measures. Each image is
    measured once; the medians are taken over its subsets."""
    generated_widths = [stroke_width(im) for im in generated]
    real_widths = [stroke_width(im) for im in real]
    real_sizes = [size_word(im) for im in real]
    widths = {"stroke_width": _median(generated_widths), "stroke_width_real": _median(real_widths)}
    for size in SIZES:
        widths[f"stroke_width_{size}"] = _median(w for w, asked in zip(generated_widths, asked_sizes) if asked == size)
        widths[f"stroke_width_real_{size}"] = _median(w for w, got in zip(real_widths, real_sizes) if got == size)
    return widths
