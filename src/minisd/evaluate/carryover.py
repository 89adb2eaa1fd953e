"""Training-stage numbers copied into results/eval/metrics.json, so one row of `dvc exp show` tells the story.

Each wanted number is one key of a training stage's DVCLive metrics.json, flattened ("val/psnr"
is {"val": {"psnr": ...}} there); what is not found is reported under `skipped`, never silently dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

# eval metric name -> (metrics file, flattened key): the keys unet/trainer.py and vae/trainer.py write
WANTED = {
    "unet_val_loss": ("unet", "final_val_loss"),
    "vae_psnr": ("vae", "val/psnr"),
    "vae_ssim": ("vae", "val/ssim"),
    "vae_ink_f1": ("vae", "val/ink_f1"),
    "vae_paper_grey": ("vae", "val/paper_grey"),
}


def flat_metrics(tree: dict, prefix: str = "") -> dict[str, float]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_metrics(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def carry_over(files: dict[str, Path]) -> tuple[dict, dict]:
    """files: {"unet": results/unet/metrics.json, "vae": ...} -> ({name: value}, {name: why missing})."""
    loaded = {}
    for owner, path in files.items():
        path = Path(path)
        loaded[owner] = (flat_metrics(json.loads(path.read_text())), path) if path.is_file() else (None, path)
    values, skipped = {}, {}
    for name, (owner, key) in WANTED.items():
        flat, path = loaded[owner]
        if flat is None:
            skipped[name] = f"{path} not found"
        elif key not in flat:
            skipped[name] = f"{path} has no {key}"
        else:
            values[name] = flat[key]
    return values, skipped
