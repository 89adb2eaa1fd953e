"""Do the samples match their prompts, by the pipeline's own CLIP (models/clip from train_clip)?

Works for any captioned data, labels or not. Each number has its real reference beside it,
measured the same way on held-out real sketches, so it has a scale:
  sketch_clip_score       100 * max(cos(sample, its prompt), 0), mean over samples (named like
                          sketch_fid: measured by the project's own network; `clip_score` is the
                          standard one, from a pretrained CLIP at `evaluate.clip_path`)
  sketch_clip_score_real  the same for real val sketches and their own captions
  prompt_retrieval        share of samples whose nearest eval prompt is their own (chance 1 / prompts)
  prompt_retrieval_real   the same for the real val sketches an eval prompt describes: the one it was
                          taken from and every other with its class, size and position (a hit: the
                          nearest prompt is one that describes the sketch)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from minisd.clip.data import model_inputs, tokenize
from minisd.clip.metrics import clip_score, image_embeddings, text_embeddings

log = logging.getLogger("minisd.evaluate")


def _labels(prompt: dict) -> tuple | None:
    """(class, size, position) when the prompt names all three, else None (it describes only its source)."""
    attributes = prompt.get("attributes") or {}
    labels = (prompt.get("class"), attributes.get("size"), attributes.get("position"))
    return labels if None not in labels else None


def describing_prompts(prompts: list[dict], real_keys: list[str], real_labels: list[tuple]) -> dict[int, set[int]]:
    """{val sketch index: the prompts that describe it}, for the sketches any prompt describes.

    The source sample alone is 1 sketch per prompt (42 in the default: one miss moves the rate
    by 0.024); every val sketch with the same class, size and position is as fair a reference.
    """
    by_labels: dict[tuple, set[int]] = {}
    for p, prompt in enumerate(prompts):
        if (labels := _labels(prompt)) is not None:
            by_labels.setdefault(labels, set()).add(p)
    by_key = {prompt["key"]: p for p, prompt in enumerate(prompts) if prompt.get("key")}
    described = {}
    for i, (key, labels) in enumerate(zip(real_keys, real_labels)):
        matches = set(by_labels.get(tuple(labels), ())) | ({by_key[key]} if key in by_key else set())
        if matches:
            described[i] = matches
    return described


def clip_alignment(clip_dir: Path, prompts: list[dict], generated: np.ndarray, real_keys: list[str],
                   real_labels: list[tuple], real: np.ndarray, real_captions: list[list[str]],
                   device) -> tuple[dict, dict]:
    """generated: (P, S, H, W) uint8, row p sampled from prompts[p]; real_labels: (class, size,
    position) per val sketch. Returns (metrics, skipped reasons); metrics["real_retrieval_sketches"]
    is how many val sketches `prompt_retrieval_real` is over."""
    from transformers import CLIPModel, CLIPTokenizer

    names = ("sketch_clip_score", "sketch_clip_score_real", "prompt_retrieval", "prompt_retrieval_real")
    folder = Path(clip_dir)
    if not (folder / "config.json").is_file():
        return {}, {n: f"no CLIP at {folder} (run `dvc repro train_clip`)" for n in names}
    try:
        model = CLIPModel.from_pretrained(folder).to(device).eval()
    except (OSError, ValueError, KeyError) as error:  # e.g. a text-only pretrained checkpoint
        reason = f"{folder} holds no full CLIPModel ({str(error).splitlines()[0][:100]})"
        return {}, {n: reason for n in names}
    tokenizer = CLIPTokenizer.from_pretrained(folder)

    prompt_emb = text_embeddings(model, tokenize(tokenizer, [p["text"] for p in prompts]))
    per_prompt = generated.shape[1]
    sample_emb = image_embeddings(model, model_inputs(model, folder, generated.reshape(-1, *generated.shape[2:])))
    own = torch.arange(len(prompts)).repeat_interleave(per_prompt)
    metrics = {
        "sketch_clip_score": clip_score(sample_emb, prompt_emb[own]).mean().item(),
        "prompt_retrieval": (sample_emb @ prompt_emb.T).argmax(1).eq(own).float().mean().item(),
        "prompt_retrieval_chance": 1 / len(prompts),
    }

    real_emb = image_embeddings(model, model_inputs(model, folder, real))
    flat = [(i, c) for i, captions in enumerate(real_captions) for c in captions]
    caption_emb = text_embeddings(model, tokenize(tokenizer, [c for _, c in flat]))
    metrics["sketch_clip_score_real"] = clip_score(real_emb[[i for i, _ in flat]], caption_emb).mean().item()
    described = describing_prompts(prompts, real_keys, real_labels)
    if described:
        rows = list(described)
        nearest = (real_emb[rows] @ prompt_emb.T).argmax(1).tolist()
        metrics["prompt_retrieval_real"] = float(np.mean([n in described[i] for i, n in zip(rows, nearest)]))
        metrics["real_retrieval_sketches"] = len(rows)
    skipped = {} if described else {
        "prompt_retrieval_real": "no eval prompt names a val sample or the class, size and position of one"}
    return metrics, skipped
