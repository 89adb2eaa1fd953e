"""Vector strokes -> anti-aliased raster, aspect kept, centred with a margin or placed where asked."""

from __future__ import annotations

import cv2
import numpy as np

SUPERSAMPLE = 4  # draw 4x larger then area-downscale: fractional stroke widths, smooth edges
SHIFT = 4  # fixed-point bits for sub-pixel polyline coordinates


def render_strokes(
    strokes: list[np.ndarray], size: int, stroke_width: float, margin: float,
    transform: tuple[float, np.ndarray] | None = None, supersample: int = SUPERSAMPLE,
) -> np.ndarray:
    """strokes: float arrays (n, 2) of x, y in any units (y down) -> (size, size) uint8 ink on white.

    Centred with `margin` on each side, or placed by `transform`: (scale, offset) to output pixels.
    `supersample=1` draws at the output size: whole-pixel widths, harder edges (the synthetic doodles)."""  # fmt: skip
    big = size * supersample
    thickness = max(1, int(round(stroke_width * supersample)))
    if transform is None:
        points = np.concatenate(strokes)
        lo, hi = points.min(axis=0), points.max(axis=0)
        usable = big * (1 - 2 * margin) - thickness
        scale = usable / max(float((hi - lo).max()), 1e-6)
        offset = big / 2 - (lo + hi) / 2 * scale
    else:
        scale, offset = transform[0] * supersample, transform[1] * supersample
    canvas = np.full((big, big), 255, np.uint8)
    lines = [np.round((s * scale + offset) * (1 << SHIFT)).astype(np.int32).reshape(-1, 1, 2) for s in strokes]
    cv2.polylines(canvas, lines, False, 0, thickness, cv2.LINE_AA, SHIFT)
    for s, line in zip(strokes, lines):  # dots: a one-point or zero-length stroke still leaves a mark
        if len(s) == 1 or np.ptp(s, axis=0).max() == 0:
            cv2.circle(canvas, tuple(int(v) for v in line[0, 0]), (thickness << SHIFT) // 2, 0, -1, cv2.LINE_AA, SHIFT)
    return canvas if supersample == 1 else cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
