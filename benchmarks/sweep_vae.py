"""VAE recipe sweep: train each recipe on the current shards as train_vae does, score its full-size
reconstructions of the first val images, print one table row per recipe.

Run after `dvc repro ingest` (it reads data/shards and writes only under --out):

    python benchmarks/sweep_vae.py --recipe base --recipe 'seed1:seed=1' --recipe 'full100:full_size_steps=100'

A recipe is NAME or NAME:key=value,... over the `vae` params of params.yaml (values are YAML, as in
sweep_unet.py). Columns: minutes of training, then val PSNR, SSIM, ink F1 and paper grey (the grey
cast on blank paper in 8-bit levels, `vae/metrics.py`), all in fp32 on the first --val images.
Rows are appended to --table as markdown, every row, including those that did not help.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from diffusers import AutoencoderKL
from sweep_unet import merged, parse_recipe

from minisd import paths
from minisd.params.base import load_section
from minisd.params.vae import VaeParams
from minisd.shards import load_images
from minisd.vae.trainer import train_vae
from minisd.vae.validation import score_reconstructions

COLUMNS = ["recipe", "steps", "full-size steps", "seed", "train min", "PSNR dB", "SSIM", "ink F1", "paper grey"]


def run(name: str, params: VaeParams, val, out: Path) -> list:
    where = out / name
    shutil.rmtree(where, ignore_errors=True)
    start = time.perf_counter()
    train_vae(params, paths.SHARDS, where / "vae", where / "live", where / "checkpoints")
    minutes = (time.perf_counter() - start) / 60
    metrics, _ = score_reconstructions(AutoencoderKL.from_pretrained(where / "vae").eval(), val, 32)
    return [name, params.max_steps, params.full_size_steps, params.seed, f"{minutes:.1f}", f"{metrics['psnr']:.2f}",
            f"{metrics['ssim']:.3f}", f"{metrics['ink_f1']:.3f}", f"{metrics['paper_grey']:.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", action="append", default=[], help="NAME[:key=value,...] (repeatable)")
    parser.add_argument("--val", type=int, default=256, help="val images to score")
    parser.add_argument("--out", type=Path, default=None, help="folder for the trained VAEs (default: a temp dir)")
    parser.add_argument("--table", type=Path, default=None, help="append the rows to this markdown file")
    args = parser.parse_args()
    base = load_section("vae", VaeParams).model_dump(mode="json")
    _, val = load_images(paths.SHARDS, "val")
    out = args.out or Path(tempfile.mkdtemp(prefix="sweep-vae-"))
    print("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS), flush=True)
    for text in args.recipe or ["base"]:
        name, overrides = parse_recipe(text)
        row = run(name, VaeParams.model_validate(merged(base, overrides)), val[: args.val], out)
        line = "| " + " | ".join(map(str, row)) + f" |  <!-- {json.dumps(overrides)} -->"
        print(line, flush=True)
        if args.table:
            with args.table.open("a") as table:
                table.write(line + "\n")


if __name__ == "__main__":
    main()
