"""Stroke width: do the samples draw lines as thin as the sketches they learned from?

A stroke of length L and width w covers about L * w ink pixels and is outlined by about 2 * L of
contour, so w ~ 2 * ink / contour (exact for straight strokes, rings and open curves alike; no
skeleton needed). The median over images keeps a few filled blobs from hiding thin lines or back.
"""

from __future__ import annotations

import cv2
import numpy as np

INK = 128  # gray below this is ink (the images are black lines on white)


def stroke_width(gray: np.ndarray) -> float | None:
    """Mean stroke width in pixels of one (H, W) uint8 sketch; None without ink."""
    ink = (gray < INK).astype(np.uint8)
    area = int(ink.sum())
    if area == 0:
        return None
    contours, _ = cv2.findContours(ink, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return 2 * area / max(sum(cv2.arcLength(c, True) for c in contours), 1.0)


def median_stroke_width(images: np.ndarray) -> float | None:
    widths = [w for w in (stroke_width(im) for im in images) if w is not None]
    return float(np.median(widths)) if widths else None


def stroke_widths(generated: np.ndarray, real: np.ndarray) -> dict:
    """`stroke_width` of the samples beside `stroke_width_real` of the real val sketches."""
    return {"stroke_width": median_stroke_width(generated), "stroke_width_real": median_stroke_width(real)}
