"""The exported folder's README.md: a Hugging Face model card, so `models/pipeline` can be pushed to
a hub as it is and tells a reader what the weights are, how they were made and what they achieve.

Everything in it comes from this run: the recipe from params (the keys dvc.yaml lists for evaluate,
so a change that alters the card reruns it), the data from the ingest report, the numbers from
metrics.json with their 95% intervals, and the classes-by-size sheet copied beside the weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from minisd import paths
from minisd.config import Params
from minisd.eval_prompts import load_prompts
from minisd.evaluate.sheets import caption

SHEET = "classes_by_size.png"
# (params key, what it is): the recipe table; dvc.yaml's evaluate stage lists each of these keys
RECIPE = (
    ("text_encoder.source", "text encoder"),
    ("text_encoder.path", "pretrained text encoder"),
    ("clip.max_steps", "CLIP (text encoder) training steps"),
    ("vae.source", "VAE"),
    ("vae.path", "pretrained VAE"),
    ("vae.max_steps", "VAE training steps"),
    ("vae.decoder_steps", "then decoder-only steps on noisy latents"),
    ("unet.block_out_channels", "UNet channels"),
    ("unet.max_steps", "UNet training steps"),
    ("unet.batch_size", "UNet batch size"),
    ("unet.lr", "UNet learning rate"),
    ("unet.noise_scheduler.prediction_type", "prediction type"),
    ("evaluate.scheduler", "sampler"),
    ("evaluate.steps", "sampling steps"),
    ("evaluate.guidance", "guidance scale"),
    ("evaluate.guidance_rescale", "guidance rescale"),
)
# (metrics key, what it measures): the results table, in this order, when present
HEADLINE = (
    ("judge_accuracy", "class: the judge names the prompt's class"),
    ("size_accuracy", "size word followed"),
    ("position_accuracy", "position word followed"),
    ("joint_accuracy", "class, size and position all right"),
    ("judge_small_accuracy", "class, small prompts"),
    ("judge_medium_accuracy", "class, medium prompts"),
    ("judge_large_accuracy", "class, large prompts"),
    ("judge_vae_roundtrip_accuracy", "ceiling: judge on val sketches through the VAE"),
    ("sketch_fid", "sketch-FID (lower is better)"),
    ("sketch_fid_real", "sketch-FID of real sketches: the floor"),
    ("stroke_width", "stroke width in pixels (median)"),
    ("stroke_width_real", "the same on real val sketches"),
    ("paper_grey", "grey cast on blank paper, 8-bit levels (0 is white)"),
    ("prompt_retrieval", "own-CLIP prompt retrieval"),
    ("prompt_retrieval_real", "the same on real val sketches"),
    ("vae_psnr", "VAE reconstruction PSNR (dB)"),
    ("vae_ink_f1", "VAE ink F1"),
)
QUICKDRAW_CREDIT = (
    "Quick, Draw! drawings by players of the game, made available by Google, Inc. under the Creative "
    "Commons Attribution 4.0 International license (https://creativecommons.org/licenses/by/4.0/)."
)


def lookup(params: Params, dotted: str):
    value = params
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def data_lines(report: dict, params: Params) -> tuple[list[str], list[str]]:
    """One line per ingest source (what it is, how many drawings) and the dataset names for the header.

    The report lists the sources in params order under the names ingest gave them (`source_names`)."""
    entries = list(report.get("sources", {}).items()) or [(None, {})] * len(params.ingest.sources)
    lines, datasets = [], []
    for source, (name, counts) in zip(params.ingest.sources, entries):
        label, count = f"`{name}`: " if name else "", counts.get("accepted", "?")
        if source.kind == "synthetic":
            lines.append(f"- {label}{count} procedurally drawn doodles (offline, seed {source.seed})")
        elif source.kind == "quickdraw":
            lines.append(f"- {label}{count} Quick, Draw! drawings from `data/raw/{source.path}`. {QUICKDRAW_CREDIT}")
            datasets.append("quickdraw")
        else:
            lines.append(f"- {label}{count} images from `data/raw/{source.path}`")
    return lines, datasets


def metric_rows(metrics: dict) -> list[str]:
    rows = ["| metric | value | 95% interval |", "|---|---|---|"]
    for key, meaning in HEADLINE:
        if key not in metrics:
            continue
        bounds = metrics.get("ci95", {}).get(key)
        interval = f"[{bounds['low']:.2f}, {bounds['high']:.2f}]" if bounds else ""
        rows.append(f"| {meaning} (`{key}`) | {metrics[key]:.3g} | {interval} |")
    return rows


def card_text(params: Params, metrics: dict, report: dict, classes: list[str], with_sheet: bool) -> str:
    lines, datasets = data_lines(report, params)
    header = {
        "library_name": "diffusers",
        "pipeline_tag": "text-to-image",
        "license": params.evaluate.license,
        "tags": ["text-to-image", "sketch", "line-art", "latent-diffusion", "minisd"],
    }
    if datasets:
        header["datasets"] = datasets
    counts = metrics.get("counts", {})
    recipe = [f"| {meaning} | `{lookup(params, key)}` |" for key, meaning in RECIPE if lookup(params, key) is not None]
    parts = [
        "---\n" + yaml.safe_dump(header, sort_keys=False) + "---",
        "# Mini-SD sketch model",
        "A small latent diffusion model that turns a caption into a 128x128 line drawing: a stock diffusers "
        "`StableDiffusionPipeline` (tokenizer, CLIP text encoder, VAE, UNet, scheduler; no safety checker), "
        "trained end to end by the Mini-SD DVC pipeline.",
        "```python\nfrom diffusers import StableDiffusionPipeline\n\n"
        "pipe = StableDiffusionPipeline.from_pretrained(\"path/to/this/folder\")\n"
        f"image = pipe(\"a small {classes[0] if classes else 'star'} in the top left\", "
        f"num_inference_steps={params.evaluate.steps}, guidance_scale={params.evaluate.guidance}, "
        f"guidance_rescale={params.evaluate.guidance_rescale}).images[0]\n```",
        "## Training data",
        "\n".join(lines),
        f"Classes ({len(classes)}): {', '.join(classes) if classes else 'none labelled'}. Captions name the class "
        "and, where the data carries them, a size (small, medium, large) and one of nine places, measured from "
        "the drawn ink.",
        "## Recipe",
        "\n".join(["| | |", "|---|---|", *recipe]),
        "## Results",
        f"Scored on {counts.get('samples', '?')} samples of {counts.get('prompts', '?')} held-out prompts "
        f"({counts.get('classes', '?')} classes) by a small classifier (the judge) trained on the real training "
        "sketches and by measuring the drawn ink; 95% intervals are Wilson intervals.",
        "\n".join(metric_rows(metrics)),
    ]
    if with_sheet:
        prompt = caption("<size>", "<class>", "center")
        parts.append(f"Every class at every size (prompt \"{prompt}\", one seed):\n\n![samples]({SHEET})")
    parts += [
        "## Limits",
        "- Draws only the classes above, at 128x128, black ink on white; other words are ignored or give blobs.\n"
        "- Size and place follow the nine-cell, three-size vocabulary of the captions, nothing finer.\n"
        "- Small prompts are the weakest (see the per-size rows); the numbers are from one seed of one run.\n"
        "- The judge that scores class is itself a small model; its accuracy on real sketches is the ceiling row.",
    ]
    return "\n\n".join(parts) + "\n"


def write_model_card(
    params: Params, metrics: dict, pipeline_dir: Path = paths.PIPELINE,
    report: Path = paths.INGEST_DIR / "report.json", prompts: Path = paths.TEXT_CACHE / "prompts.json",
    sheet: Path = paths.EVAL_DIR / SHEET,
) -> Path:  # fmt: skip
    """README.md (and the sheet it shows) into the exported folder; the defaults are the DVC layout."""
    classes = sorted({p["class"] for p in load_prompts(prompts) if p["class"] is not None})
    with_sheet = sheet.is_file()
    if with_sheet:
        shutil.copyfile(sheet, pipeline_dir / SHEET)
    ingest = json.loads(report.read_text()) if report.is_file() else {}
    path = pipeline_dir / "README.md"
    path.write_text(card_text(params, metrics, ingest, classes, with_sheet))
    return path
