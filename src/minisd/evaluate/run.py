"""The evaluate stage: export the pipeline, sample it, score the samples, draw the figures.

What is scored is the exported folder itself (loaded back with stock diffusers), so the numbers
describe exactly what `generate` and outside users get.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from accelerate import PartialState

from minisd import paths
from minisd.params.evaluate import EvaluateParams
from minisd.eval_prompts import load_prompts
from minisd.evaluate.adherence import score_samples
from minisd.evaluate.alignment import clip_alignment
from minisd.evaluate.carryover import carry_over
from minisd.evaluate.ceiling import judge_ceiling
from minisd.evaluate.distances import frechet_distance, kernel_distance, split_real
from minisd.evaluate.figures import labelled_grid, read_curves, write_loss_curves
from minisd.evaluate.external_metrics import check_paths, optional_metrics
from minisd.evaluate.sheets import write_sheets
from minisd.evaluate.strokes import stroke_widths
from minisd.judge.model import load_judge
from minisd.pipeline import export_pipeline, load_pipeline, sample
from minisd.shards import iter_samples
from minisd.vae.metrics import paper_grey

log = logging.getLogger("minisd.evaluate")


@dataclass(frozen=True)
class Locations:
    """Inputs and outputs; the defaults are the DVC layout, tests point them at temporary folders."""

    models: Path = paths.MODELS
    shards: Path = paths.SHARDS
    prompts: Path = paths.TEXT_CACHE / "prompts.json"
    unet_live: Path = paths.UNET_LIVE
    vae_live: Path = paths.VAE_LIVE
    pipeline: Path = paths.PIPELINE
    out: Path = paths.EVAL_DIR


def _round(value):
    """Metrics are rounded so float noise in the last bits does not show up as a change in `dvc exp diff`."""
    return None if value is None else round(float(value), 6)


def sketch_distances(judge, generated: np.ndarray, real: np.ndarray) -> tuple[dict, dict]:
    """Sketch-FID/KID in the judge's feature space, with the real-vs-real floor beside them."""
    if judge is None:
        reason = "no judge (no class labels to train one)"
        return {}, {k: reason for k in ("sketch_fid", "sketch_kid")}
    subset, reference = split_real(len(real), len(generated))
    if len(subset) < 2 or len(reference) < 2 or len(generated) < 2:
        reason = f"too few samples (generated {len(generated)}, real val {len(real)}; need >= 2 each, 4 real)"
        return {}, {k: reason for k in ("sketch_fid", "sketch_kid")}
    gen, ref, floor = judge.features(generated), judge.features(real[reference]), judge.features(real[subset])
    return {
        "sketch_fid": frechet_distance(gen, ref),
        "sketch_fid_real": frechet_distance(floor, ref),
        "sketch_kid": kernel_distance(gen, ref),
        "sketch_kid_real": kernel_distance(floor, ref),
    }, {}


def draw_samples(pipe, prompts: list[dict], params: EvaluateParams, states=None) -> np.ndarray:
    """(P, max(samples_per_prompt, grid_seeds), H, W): column j of every row uses seed + j.

    states: None (the pipeline encodes the prompt texts), or (prompt states (P, tokens, hidden),
    empty-prompt states (tokens, hidden)) to sample from, e.g. a benchmark's altered text cache.
    """
    per_prompt = max(params.samples_per_prompt, params.grid_seeds)
    texts = [p["text"] for p in prompts for _ in range(per_prompt)]
    negative = None
    if states is not None:
        texts, negative = states[0].repeat_interleave(per_prompt, dim=0), states[1]
    seeds = [params.seed + j for _ in prompts for j in range(per_prompt)]
    started = time.perf_counter()
    flat = sample(pipe, texts, seeds, params.steps, params.guidance, params.batch_size, desc="evaluate",
                  negative=negative, guidance_rescale=params.guidance_rescale)
    seconds = time.perf_counter() - started
    log.info("sampled %d images in %.1fs (%.2f s/img)", len(flat), seconds, seconds / max(len(flat), 1))
    return flat.reshape(len(prompts), per_prompt, *flat.shape[1:])


def judge_guesses(judge, prompts: list[dict], scored: np.ndarray) -> list[list[str]]:
    unknown = sorted({p["class"] for p in prompts if p["class"] is not None} - set(judge.classes))
    if unknown:
        log.warning("prompt classes the judge never saw (always scored wrong): %s", unknown)
    n = scored.shape[1]
    guesses = judge.predict(scored.reshape(-1, *scored.shape[2:]))
    return [guesses[i * n : (i + 1) * n] for i in range(len(prompts))]


def score_pipeline(params: EvaluateParams, where: Locations = Locations(), prompt_states=None) -> dict:
    """prompt_states: see `draw_samples` (the stage leaves it None: it scores text in, sketches out)."""
    check_paths(params)
    device = PartialState().device
    export_pipeline(where.models, where.pipeline, params.scheduler)
    pipe = load_pipeline(where.pipeline, device)  # score what was exported, loaded back by stock diffusers
    log.info("exported %s (%s); sampling on %s", where.pipeline, params.scheduler, device)
    prompts = load_prompts(where.prompts)
    images = draw_samples(pipe, prompts, params, prompt_states)
    scored = images[:, : params.samples_per_prompt]
    generated = scored.reshape(-1, *scored.shape[2:])

    skipped = {}
    judge, judge_skip = load_judge(where.models / "judge", device)
    if judge is None:
        skipped["judge_accuracy"] = skipped["joint_accuracy"] = judge_skip
    predicted = judge_guesses(judge, prompts, scored) if judge is not None else None
    adherence, records, counts = score_samples(prompts, scored, predicted)
    for name, value in adherence.items():
        if value is None and name not in skipped:
            skipped[name] = "no eval prompt carries the labels it needs"

    val = list(iter_samples(where.shards, "val"))
    real = np.stack([s.image for s in val])
    if real.shape[1:] != generated.shape[1:]:
        real = np.stack([cv2.resize(im, generated.shape[1:][::-1], interpolation=cv2.INTER_AREA) for im in real])
    distances, distance_skip = sketch_distances(judge, generated, real)
    asked_sizes = [(p.get("attributes") or {}).get("size")
                   for p in prompts for _ in range(params.samples_per_prompt)]
    widths = stroke_widths(generated, asked_sizes, real)
    paper = {"paper_grey": paper_grey(generated), "paper_grey_real": paper_grey(real)}
    skipped.update({name: "no inked image (of that size)" for name, value in widths.items() if value is None})
    ceiling, ceiling_intervals = judge_ceiling(judge, pipe.vae, val) if judge is not None else ({}, {})
    val_labels = [(s.label, s.attributes.get("size"), s.attributes.get("position")) for s in val]
    alignment, alignment_skip = clip_alignment(where.models / "clip", prompts, scored, [s.key for s in val],
                                               val_labels, real, [s.captions for s in val], device)
    real_retrieval_sketches = alignment.pop("real_retrieval_sketches", 0)
    carried, carry_skip = carry_over({"unet": where.unet_live / "metrics.json", "vae": where.vae_live / "metrics.json"})
    scored_texts = [p["text"] for p in prompts for _ in range(params.samples_per_prompt)]
    optional, optional_skip = optional_metrics(params, generated, scored_texts, real, device)
    skipped.update({**distance_skip, **alignment_skip, **carry_skip, **optional_skip})

    intervals = adherence.pop("ci95") | ceiling_intervals
    metrics = {k: _round(v) for k, v in {**adherence, **ceiling, **distances, **widths, **paper, **alignment, **carried,
                                         **optional}.items() if v is not None}
    metrics["ci95"] = {name: {end: _round(x) for end, x in bounds.items()} for name, bounds in intervals.items()}
    if judge is not None:
        metrics["judge_val_accuracy"] = _round(judge.info.get("val_accuracy"))
    classes = sorted({p["class"] for p in prompts if p["class"] is not None})
    metrics["counts"] = {
        "prompts": len(prompts),
        "samples": len(generated),
        "real_val": len(real),
        "real_retrieval_sketches": real_retrieval_sketches,
        "classes": len(classes),
        **counts,
    }
    metrics["skipped"] = dict(sorted(skipped.items()))
    write_outputs(Path(where.out), metrics, records, images, prompts, params, where)
    if not write_sheets(pipe, classes, params, Path(where.out)):
        log.info("no classes-by-size or positions sheet: the eval prompts carry no class labels")
    for name, reason in metrics["skipped"].items():
        log.info("skipped %s: %s", name, reason)
    log.info("metrics: %s", {k: v for k, v in metrics.items() if k not in ("counts", "skipped", "ci95")})
    return metrics


def write_outputs(out: Path, metrics: dict, records: list, images: np.ndarray, prompts: list[dict],
                  params: EvaluateParams, where: Locations) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "samples.json").write_text(json.dumps(records, indent=2) + "\n")
    seed_titles = [f"seed {params.seed + j}" for j in range(params.grid_seeds)]
    grid = labelled_grid(images[:, : params.grid_seeds], [p["text"] for p in prompts], seed_titles)
    cv2.imwrite(str(out / "grid.png"), grid)
    curves = {**read_curves(where.unet_live, "unet"), **read_curves(where.vae_live, "vae")}
    write_loss_curves(curves, out / "loss_curves.png")
