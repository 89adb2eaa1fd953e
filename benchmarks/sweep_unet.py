"""UNet recipe sweep: train each recipe on the current caches for a fixed number of steps, score it
exactly as the evaluate stage does, print one table row per recipe.

Run after `dvc repro encode_latents embed_text train_judge` (it reads data/cache/*, models/vae,
models/judge, models/tokenizer, models/text_encoder and leaves them untouched):

    python benchmarks/sweep_unet.py --recipe base --recipe 'no_minsnr:snr_gamma=null' --steps 1200
    python benchmarks/sweep_unet.py --recipe 'lr3e-3:lr=0.003,max_steps=1600' --guidance 6

A recipe is NAME or NAME:key=value,... over the `unet` params of params.yaml (values are YAML;
nested keys with dots, e.g. noise_scheduler.prediction_type=epsilon; lists with ';' as in
block_out_channels=[32;64;128]). `--text-cache` swaps the caption embeddings (e.g. a cache made by
another text encoder, with that encoder in `--text-encoder`), for A/Bs at equal UNet compute;
with `--prompt-states` the eval prompts are sampled from that cache's rows too (benchmarks/oracle_text.py).
Rows are appended to --table as markdown, every row, including those that did not help.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
import yaml

from minisd import paths
from minisd.caches.text_cache import TextCache
from minisd.config import load_params
from minisd.evaluate.run import Locations, score_pipeline
from minisd.training.precision import make_accelerator
from minisd.unet.inputs import load_inputs
from minisd.unet.repa import teacher_embeddings
from minisd.unet.trainer import Outputs, fit_unet

COLUMNS = ["recipe", "steps", "train min", "samples/s", "judge", "size", "position", "size+pos", "all three",
           "clip score", "sketch-FID (floor)", "val loss"]


def parse_recipe(text: str) -> tuple[str, dict]:
    name, _, assignments = text.partition(":")
    overrides: dict = {}
    for item in filter(None, assignments.split(",")):
        key, _, value = item.partition("=")
        node = overrides
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value.replace(";", ","))
    return name, overrides


def merged(base: dict, overrides: dict) -> dict:
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merged(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def run_recipe(name: str, overrides: dict, args, work: Path) -> list[str]:
    params = load_params()
    unet = params.unet.model_validate(merged(params.unet.model_dump(), {"max_minutes": None, **overrides}))
    if args.steps:
        unet = unet.model_copy(update={"max_steps": args.steps})
    evaluation = params.evaluate.model_copy(update={k: v for k, v in
                                                    {"guidance": args.guidance, "steps": args.sample_steps}.items() if v})
    models = work / "models"
    shutil.rmtree(work, ignore_errors=True)
    models.mkdir(parents=True)
    for part in ("tokenizer", "vae", "judge", "clip"):
        if (paths.MODELS / part).exists():
            shutil.copytree(paths.MODELS / part, models / part)
    shutil.copytree(args.text_encoder, models / "text_encoder")
    accelerator = make_accelerator(unet.mixed_precision)
    text, train, val, _ = load_inputs(args.text_cache, paths.LATENT_CACHE, paths.VAE)
    teacher = teacher_embeddings(paths.CLIP, paths.SHARDS, train.keys) if unet.repa_weight else None
    torch.manual_seed(unet.seed)
    started = time.perf_counter()
    result = fit_unet(unet, train, val, Outputs(models / "unet", models / "scheduler", work / "unet_live"),
                      accelerator=accelerator, teacher=teacher)
    minutes = (time.perf_counter() - started) / 60
    where = Locations(models=models, prompts=args.text_cache / "prompts.json", unet_live=work / "unet_live",
                      pipeline=work / "pipeline", out=work / "eval")
    states = None
    if args.prompt_states:  # sample from the cache's eval-prompt rows, not through the text encoder
        cache = TextCache.open(args.text_cache)
        states = (cache.embeddings[cache.prompt_rows].float(), cache.embeddings[cache.empty_row].float())
    m = score_pipeline(evaluation, where, states)
    rate = result.step * unet.batch_size * unet.gradient_accumulation_steps / (minutes * 60)

    def f(key, digits=2):
        return "-" if m.get(key) is None else f"{m[key]:.{digits}f}"

    return [name + (f" (guidance {evaluation.guidance:g})" if args.guidance else ""), str(result.step),
            f"{minutes:.1f}", f"{rate:.1f}", f("judge_accuracy"), f("size_accuracy"), f("position_accuracy"),
            f("attributes_accuracy"), f("joint_accuracy"), f("sketch_clip_score", 1),
            f"{f('sketch_fid', 1)} ({f('sketch_fid_real', 1)})", f("unet_val_loss", 4)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", action="append", default=[], help="NAME[:key=value,...] (repeatable)")
    parser.add_argument("--steps", type=int, default=None, help="override max_steps of every recipe")
    parser.add_argument("--guidance", type=float, default=None, help="evaluate.guidance override")
    parser.add_argument("--sample-steps", type=int, default=None, help="evaluate.steps override")
    parser.add_argument("--text-cache", type=Path, default=paths.TEXT_CACHE)
    parser.add_argument("--text-encoder", type=Path, default=paths.TEXT_ENCODER)
    parser.add_argument("--prompt-states", action="store_true",
                        help="sample eval prompts from --text-cache's rows (a cache no text encoder makes, e.g. oracle_text.py)")
    parser.add_argument("--table", type=Path, default=Path("benchmarks/results/sweep_unet.md"))
    parser.add_argument("--keep", type=Path, default=None, help="keep each recipe's outputs under this folder")
    args = parser.parse_args()
    args.table.parent.mkdir(parents=True, exist_ok=True)
    if not args.table.exists():
        args.table.write_text("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n")
    print("| " + " | ".join(COLUMNS) + " |", flush=True)
    for text in args.recipe or ["base"]:
        name, overrides = parse_recipe(text)
        root = args.keep or Path(tempfile.mkdtemp(prefix="sweep-"))
        row = run_recipe(name, overrides, args, root / name)
        line = "| " + " | ".join(row) + " |"
        print(line, flush=True)
        with args.table.open("a") as table:
            table.write(line + f"  <!-- {json.dumps(overrides)} -->\n")
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
