"""Figures a person reads at a glance: every class at every size, and one class at every position.

The eval grid (`grid.png`, one row per labelled prompt) is the full record but too long to read
whole; these two sample fixed, templated prompts instead, so each cell answers one question.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from minisd.attributes import POSITIONS, SIZES
from minisd.captions import SHEET_TEMPLATE, TEMPLATES, layout_caption
from minisd.params.evaluate import EvaluateParams
from minisd.evaluate.figures import labelled_grid
from minisd.pipeline import sample


def caption(size: str, cls: str, position: str) -> str:
    return layout_caption(TEMPLATES[SHEET_TEMPLATE], cls, size, position)


def write_sheets(pipe, classes: list[str], params: EvaluateParams, out: Path) -> list[str]:
    """classes_by_size.png (rows classes, columns sizes, centred) and positions.png (the first class,
    medium, each cell at the place its prompt names). Returns the files written (none without classes)."""
    if not classes:
        return []
    by_size = [caption(size, cls, "center") for cls in classes for size in SIZES]
    placed = [caption("medium", classes[0], position) for position in POSITIONS]
    texts = by_size + placed
    images = sample(pipe, texts, [params.seed] * len(texts), params.steps, params.guidance, params.batch_size,
                    desc="evaluate sheets", guidance_rescale=params.guidance_rescale)
    h, w = images.shape[1:]
    sizes = labelled_grid(images[: len(by_size)].reshape(len(classes), len(SIZES), h, w), classes, list(SIZES), 160)
    rows = ["top", "middle", "bottom"]
    places = labelled_grid(images[len(by_size):].reshape(3, 3, h, w), [f"{r}: {classes[0]}" for r in rows],
                           ["left", "centre", "right"], 160)
    cv2.imwrite(str(out / "classes_by_size.png"), sizes)
    cv2.imwrite(str(out / "positions.png"), places)
    return ["classes_by_size.png", "positions.png"]
