"""Where a drawing goes on the canvas: a size word's extent and a 3x3 cell, as the scale and offset
that put the drawing's bounding box there.

Shared by the synthetic doodles and placed Quick, Draw! drawings. The intent only spreads the data
over sizes and places; labels and captions are measured from the drawn ink (minisd.attributes).
"""

from __future__ import annotations

import numpy as np

from minisd.attributes import POSITIONS, SIZES

EXTENTS = {"small": (0.25, 0.40), "medium": (0.50, 0.65), "large": (0.75, 0.92)}  # bins of attributes.SIZE_EDGES


def random_spot(rng: np.random.Generator) -> tuple[str, int]:
    """A size word and a cell index (row-major into attributes.POSITIONS), uniform over both."""
    return SIZES[int(rng.integers(len(SIZES)))], int(rng.integers(len(POSITIONS)))


def _centre(cell: int, half: float, rng: np.random.Generator) -> float:
    """A centre coordinate inside grid cell `cell` (0..2) that keeps the drawing on the canvas."""
    lo, hi = max(cell / 3 + 0.03, half + 0.02), min((cell + 1) / 3 - 0.03, 1 - half - 0.02)
    if lo > hi:  # this size cannot sit in that cell; the nearest feasible spot, labels are measured
        return float(np.clip((cell + 0.5) / 3, half + 0.02, 1 - half - 0.02))
    return float(rng.uniform(lo, hi))


def fit_to_spot(
    lo: np.ndarray, hi: np.ndarray, size: int, thickness: float, size_word: str, cell: int, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """(scale, offset) mapping drawing units with bounding box lo..hi to canvas pixels, so that the
    longer side spans a random extent of `size_word` and the box's centre lies in `cell`."""
    extent = rng.uniform(*EXTENTS[size_word]) * size
    scale = (extent - thickness) / max(float((hi - lo).max()), 1e-6)
    half = (hi - lo) * scale / 2 / size + thickness / 2 / size
    cx, cy = _centre(cell % 3, half[0], rng), _centre(cell // 3, half[1], rng)
    return scale, np.array([cx, cy]) * size - (lo + hi) / 2 * scale
