"""Grids of sketches and float pixels to 8-bit gray, done one way for every figure and preview.

Sketches are ink on white paper, so white gutters would melt neighbouring images together: every
grid here separates its cells with the same grey gutter, and an unused cell is grey too, never
mistaken for a blank sample.
"""

from __future__ import annotations

import math

import numpy as np

GAP = 2  # gutter width in px
GUTTER = 128  # gutter and empty-cell grey


def tile(images, columns: int | None = None, gap: int = GAP, background: int = GUTTER) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, C) -> one image, row-major; columns default to a near square.

    Gutters lie only between cells, so a single image comes back unchanged.
    """
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / columns))
    grid = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, *images.shape[3:]), background, np.uint8)
    for i, image in enumerate(images):
        top, left = (i // columns) * (h + gap), (i % columns) * (w + gap)
        grid[top : top + h, left : left + w] = image
    return grid


def to_uint8(pixels, low: float = -1.0) -> np.ndarray:
    """Floats in [low, 1] (a tensor or an array) -> uint8 in [0, 255], clipped and rounded as an image save would."""
    if hasattr(pixels, "detach"):  # a torch tensor, without importing torch here
        pixels = pixels.detach().float().cpu().numpy()
    x = np.clip(np.asarray(pixels), low, 1.0)
    return ((x - low) * (255.0 / (1.0 - low))).round().astype(np.uint8)
