"""The evaluate figures: a labelled sample grid (OpenCV) and the training curves (matplotlib).

`dvc plots show` renders its charts with a library fetched from the internet, so offline they are
blank; these images are what a person looks at. The grid needs no system fonts; the curves use the
font matplotlib ships, and the PNG carries no version stamp, so reruns write the same bytes.
"""

from __future__ import annotations

import csv
import re
import textwrap
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from matplotlib.figure import Figure

from minisd.imagegrid import GAP, GUTTER, tile

FONT = cv2.FONT_HERSHEY_SIMPLEX
HEADER = 20  # px of column titles above the grid
COLUMNS = 4  # curve panels per row; a trainer with more panels wraps onto further rows


def _text(canvas: np.ndarray, lines: list[str], x: int, y: int, scale: float, color: int = 0, step: int = 0) -> None:
    step = step or int(22 * scale / 0.5)
    for i, line in enumerate(lines):
        cv2.putText(canvas, line, (x, y + i * step), FONT, scale, color, 1, cv2.LINE_AA)


def labelled_grid(images: np.ndarray, labels: list[str], column_titles: list[str], label_width: int = 240) -> np.ndarray:
    """(rows, cols, H, W) uint8 -> one image; each row starts with its wrapped label, columns are titled."""
    rows, cols, h, w = images.shape
    grid = tile(images.reshape(rows * cols, h, w), cols)
    top, left = HEADER + GAP, label_width + GAP
    canvas = np.full((top + grid.shape[0], left + grid.shape[1]), GUTTER, np.uint8)
    canvas[:HEADER] = 255
    canvas[top:, left:] = grid
    for c, title in enumerate(column_titles[:cols]):
        _text(canvas, [title], left + c * (w + GAP) + 4, HEADER - 6, 0.4)
    chars = max(8, int(label_width / 8.5))
    for r in range(rows):
        y = top + r * (h + GAP)
        canvas[y : y + h, :label_width] = 255
        _text(canvas, textwrap.wrap(labels[r], chars)[: max(1, h // 16)], 6, y + 16, 0.45)
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


def _panels(curves: dict) -> dict[str, dict[str, list]]:
    """{"trainer: train/loss": (steps, values)} -> {trainer: {panel: [(series, steps, values)]}}.

    train/x and val/x share the panel x; every series with "loss" in its name shares the "loss"
    panel, which comes first, so a trainer's train and val losses are read off one pair of axes.
    """
    trainers: dict[str, dict[str, list]] = {}
    for key, (steps, values) in curves.items():
        trainer, name = key.split(": ", 1)
        metric = re.sub(r"^(train|val)[/_]", "", name)
        panel = "loss" if "loss" in metric else metric
        trainers.setdefault(trainer, {}).setdefault(panel, []).append((name, steps, values))
    return {t: dict(sorted(p.items(), key=lambda item: item[0] != "loss")) for t, p in trainers.items()}


def _draw(ax, title: str, panel: str, series: list) -> None:
    for name, steps, values in series:
        keep = np.isfinite(values)
        ax.plot(steps[keep], values[keep], marker="o" if keep.sum() == 1 else None, label=name)
    finite = np.concatenate([values[np.isfinite(values)] for _, _, values in series])
    if panel == "loss" and finite.size and (finite > 0).all():
        ax.set_yscale("log")
    ax.set(title=title, xlabel="step", ylabel=panel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")


def loss_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Every logged curve: one row of panels per trainer, a note instead when nothing was logged."""
    trainers = _panels(curves)
    columns = min(COLUMNS, max((len(panels) for panels in trainers.values()), default=1))
    rows = sum(-(-len(panels) // columns) for panels in trainers.values()) or 1
    with matplotlib.rc_context({"font.size": 11}):
        fig = Figure(figsize=(4.5 * columns, 3.4 * rows), layout="constrained")
        axes = fig.subplots(rows, columns, squeeze=False)
        used, row = [], 0
        for trainer, panels in trainers.items():
            for i, (panel, series) in enumerate(panels.items()):
                used.append(axes[row + i // columns, i % columns])
                _draw(used[-1], f"{trainer}: {panel}", panel, series)
            row += -(-len(panels) // columns)
        for ax in axes.flat:
            if ax not in used:
                ax.set_axis_off()
        if not curves:
            fig.text(0.5, 0.5, "no training curves found (results/*/plots/metrics)", ha="center")
    return fig


def write_loss_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    loss_curves(curves).savefig(path, dpi=100, metadata={"Software": None})
