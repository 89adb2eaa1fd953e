"""Size and position words, measured from ink. One definition for labelling and for scoring.

The synthetic source labels each doodle by measuring what it actually drew, and evaluation
measures generated images the same way, so "a small star in the top left" means one thing.
"""

from __future__ import annotations

import numpy as np

SIZES = ("small", "medium", "large")
SIZE_EDGES = (0.45, 0.7)  # longer bbox side / image side: < 0.45 small, < 0.7 medium, else large
POSITIONS = (
    "top left", "top", "top right",
    "left", "center", "right",
    "bottom left", "bottom", "bottom right",
)  # fmt: skip
INK_THRESHOLD = 128  # a pixel darker than this is ink


def ink_mask(image: np.ndarray, threshold: int = INK_THRESHOLD) -> np.ndarray:
    return image < threshold


def ink_bbox(image: np.ndarray, threshold: int = INK_THRESHOLD) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the ink, exclusive end; None for a blank image."""
    mask = ink_mask(image, threshold)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def size_word(image: np.ndarray) -> str | None:
    box = ink_bbox(image)
    if box is None:
        return None
    extent = max(box[2] - box[0], box[3] - box[1]) / max(image.shape)
    return SIZES[int(np.searchsorted(SIZE_EDGES, extent, side="right"))]


def position_word(image: np.ndarray) -> str | None:
    """Cell of a 3x3 grid that holds the centre of the ink's bounding box."""
    box = ink_bbox(image)
    if box is None:
        return None
    h, w = image.shape
    cx, cy = (box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h
    col, row = min(int(cx * 3), 2), min(int(cy * 3), 2)
    return POSITIONS[row * 3 + col]


def measure(image: np.ndarray) -> dict:
    return {"size": size_word(image), "position": position_word(image)}


def layout(image: np.ndarray) -> str:
    """Size and position words as one key, e.g. "small top left" ('' for a blank image)."""
    words = measure(image)
    return f"{words['size']} {words['position']}" if words["size"] else ""
