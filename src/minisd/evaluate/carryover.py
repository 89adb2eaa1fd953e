"""Training-stage numbers copied into results/eval/metrics.json, so one row of `dvc exp show` tells the story.

Each wanted number is looked up by a list of candidate keys (DVCLive nests "val/loss" as
{"val": {"loss": ...}}); what is not found is reported under `skipped`, never silently dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

# eval metric name -> (metrics file, candidate flattened keys, first found wins)
WANTED = {
    "unet_val_loss": ("unet", ["final_val_loss", "val/loss"]),
    "vae_psnr": ("vae", ["val/psnr", "psnr", "final_val_psnr"]),
    "vae_ssim": ("vae", ["val/ssim", "ssim", "final_val_ssim"]),
    "vae_ink_f1": ("vae", ["val/ink_f1", "ink_f1", "final_val_ink_f1"]),
}


def flatten(tree: dict, prefix: str = "") -> dict[str, float]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def carry_over(files: dict[str, Path]) -> tuple[dict, dict]:
    """files: {"unet": results/unet/metrics.json, "vae": ...} -> ({name: value}, {name: why missing})."""
    loaded = {}
    for owner, path in files.items():
        path = Path(path)
        loaded[owner] = (flatten(json.loads(path.read_text())), path) if path.is_file() else (None, path)
    values, skipped = {}, {}
    for name, (owner, candidates) in WANTED.items():
        flat, path = loaded.get(owner, (None, Path("?")))
        if flat is None:
            skipped[name] = f"{path} not found"
            continue
        found = next((k for k in candidates if k in flat), None)
        if found is None:
            skipped[name] = f"{path} has none of {candidates}"
        else:
            values[name] = flat[found]
    return values, skipped
