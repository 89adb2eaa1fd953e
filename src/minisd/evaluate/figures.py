"""PNG figures drawn with OpenCV: a labelled sample grid and loss curves.

`dvc plots show` renders its charts with a library fetched from the internet, so offline they are
blank; these images are what a person looks at. Drawing is deterministic (no fonts from the system).
"""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
GAP = 2  # grey gutter between tiles


def _text(canvas: np.ndarray, lines: list[str], x: int, y: int, scale: float, color: int = 0, step: int = 0) -> None:
    step = step or int(22 * scale / 0.5)
    for i, line in enumerate(lines):
        cv2.putText(canvas, line, (x, y + i * step), FONT, scale, color, 1, cv2.LINE_AA)


HEADER = 20


def labelled_grid(images: np.ndarray, labels: list[str], column_titles: list[str], label_width: int = 240) -> np.ndarray:
    """(rows, cols, H, W) uint8 -> one image; each row starts with its wrapped label, columns are titled."""
    rows, cols, h, w = images.shape
    height = HEADER + rows * h + (rows + 1) * GAP
    width = label_width + cols * w + (cols + 1) * GAP
    canvas = np.full((height, width), 200, np.uint8)
    canvas[:HEADER] = 255
    for c, title in enumerate(column_titles[:cols]):
        _text(canvas, [title], label_width + GAP + c * (w + GAP) + 4, HEADER - 6, 0.4)
    chars = max(8, int(label_width / 8.5))
    for r in range(rows):
        top = HEADER + GAP + r * (h + GAP)
        canvas[top : top + h, :label_width] = 255
        lines = textwrap.wrap(labels[r], chars)[: max(1, h // 16)]
        _text(canvas, lines, 6, top + 16, 0.45)
        for c in range(cols):
            left = label_width + GAP + c * (w + GAP)
            canvas[top : top + h, left : left + w] = images[r, c]
    return canvas


def read_curves(live_dir: Path, prefix: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """DVCLive's plots/metrics/**/*.tsv (step and value columns) -> {"prefix: name": (steps, values)}."""
    curves = {}
    root = Path(live_dir) / "plots" / "metrics"
    for path in sorted(root.rglob("*.tsv")):
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        name = path.relative_to(root).with_suffix("").as_posix()
        column = name.rsplit("/", 1)[-1]
        if not rows or "step" not in rows[0] or column not in rows[0]:
            continue
        steps = np.array([float(r["step"]) for r in rows])
        values = np.array([float(r[column]) for r in rows])
        curves[f"{prefix}: {name}"] = (steps, values)
    return curves


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def curve_panel(title: str, steps: np.ndarray, values: np.ndarray, size=(360, 220)) -> np.ndarray:
    w, h = size
    panel = np.full((h, w), 255, np.uint8)
    left, right, top, bottom = 56, w - 10, 28, h - 28
    _text(panel, [title[:46]], 8, 18, 0.45)
    cv2.rectangle(panel, (left, top), (right, bottom), 120, 1)
    finite = np.isfinite(values)
    if finite.sum() == 0:
        _text(panel, ["no finite values"], left + 10, (top + bottom) // 2, 0.45)
        return panel
    s, v = steps[finite], values[finite]
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    s_lo, s_hi = float(s.min()), float(max(s.max(), s.min() + 1))
    xs = left + (s - s_lo) / (s_hi - s_lo) * (right - left)
    ys = bottom - (v - lo) / (hi - lo) * (bottom - top)
    points = np.stack([xs, ys], axis=1).round().astype(np.int32)
    if len(points) == 1:
        cv2.circle(panel, tuple(int(p) for p in points[0]), 3, 0, -1, cv2.LINE_AA)
    else:
        cv2.polylines(panel, [points], False, 0, 1, cv2.LINE_AA)
    _text(panel, [_fmt(hi)], 4, top + 10, 0.35)
    _text(panel, [_fmt(lo)], 4, bottom, 0.35)
    _text(panel, [f"{s_lo:.0f}"], left, bottom + 16, 0.35)
    label = f"step {s.max():.0f}  last {_fmt(float(v[-1]))}"
    (tw, _), _ = cv2.getTextSize(label, FONT, 0.35, 1)
    _text(panel, [label], right - tw, bottom + 16, 0.35)
    return panel


def loss_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], columns: int = 3) -> np.ndarray:
    """One panel per logged metric, in a grid; a note instead when nothing was logged."""
    if not curves:
        panel = np.full((80, 480), 255, np.uint8)
        _text(panel, ["no training curves found (results/*/plots/metrics)"], 10, 45, 0.5)
        return panel
    panels = [curve_panel(name, *sv) for name, sv in curves.items()]
    h, w = panels[0].shape
    rows = -(-len(panels) // columns)
    canvas = np.full((rows * (h + GAP) + GAP, min(columns, len(panels)) * (w + GAP) + GAP), 200, np.uint8)
    for i, panel in enumerate(panels):
        r, c = divmod(i, columns)
        canvas[GAP + r * (h + GAP) : GAP + r * (h + GAP) + h, GAP + c * (w + GAP) : GAP + c * (w + GAP) + w] = panel
    return canvas
