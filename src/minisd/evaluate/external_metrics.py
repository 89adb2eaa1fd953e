"""Metrics scored by networks from outside the project (standard FID's Inception, a public CLIP).

They are optional: the weights are local path params (nothing here downloads); an unset path
skips the metric, with the reason in metrics.json, and a path that does not exist is a clear error.
- Standard FID: `evaluate.inception_path` is the TorchScript FID Inception network used by
  StyleGAN/clean-fid (`inception-2015-12-05.pt`): called as `net(x, return_features=True)` on float
  RGB (N, 3, H, W) in [0, 255], it returns 2048-d pool features and resizes internally.
- CLIP score: `evaluate.clip_path` is a local CLIP folder (CLIPModel + its tokenizer and image
  processor, as `save_pretrained` writes them); score = 100 * mean(max(cos(image, text), 0)).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from minisd.evaluate.distances import frechet_distance
from minisd.stage import StageError


def _local(path: str, key: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise StageError(f"evaluate.{key}: {p} does not exist (a local path is required; nothing is downloaded)")
    return p


@torch.no_grad()
def inception_features(net, images: np.ndarray, device, batch_size: int = 32) -> np.ndarray:
    out = []
    for i in range(0, len(images), batch_size):
        gray = torch.from_numpy(images[i : i + batch_size]).float()
        rgb = gray.unsqueeze(1).expand(-1, 3, -1, -1).contiguous().to(device)
        out.append(net(rgb, return_features=True).double().cpu())
    return torch.cat(out).numpy()


def inception_fid(path: str, generated: np.ndarray, real: np.ndarray, device) -> float:
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13, but it is the FID network's format
        warnings.simplefilter("ignore", DeprecationWarning)
        net = torch.jit.load(str(_local(path, "inception_path")), map_location=device).eval()
    return frechet_distance(inception_features(net, generated, device), inception_features(net, real, device))


@torch.no_grad()
def reference_clip_score(path: str, images: np.ndarray, texts: list[str], device, batch_size: int = 32) -> float:
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    folder = _local(path, "clip_path")
    model = CLIPModel.from_pretrained(folder).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    processor = AutoImageProcessor.from_pretrained(folder)
    scores = []
    for i in range(0, len(images), batch_size):
        rgb = [np.repeat(im[..., None], 3, axis=2) for im in images[i : i + batch_size]]
        pixels = processor(images=rgb, return_tensors="pt")["pixel_values"].to(device)
        tokens = tokenizer(texts[i : i + batch_size], padding=True, truncation=True, return_tensors="pt").to(device)
        image_emb = model.get_image_features(pixel_values=pixels)
        text_emb = model.get_text_features(**tokens)
        image_emb = getattr(image_emb, "pooler_output", image_emb)
        text_emb = getattr(text_emb, "pooler_output", text_emb)
        cos = torch.nn.functional.cosine_similarity(image_emb, text_emb, dim=-1)
        scores.append(100.0 * cos.clamp(min=0).double().cpu())
    return float(torch.cat(scores).mean())


def check_paths(params) -> None:
    """Fail before any sampling when a given path is wrong, not after minutes of work."""
    if params.inception_path:
        _local(params.inception_path, "inception_path")
    if params.clip_path:
        _local(params.clip_path, "clip_path")


def optional_metrics(params, generated: np.ndarray, texts: list[str], real: np.ndarray, device) -> tuple[dict, dict]:
    """({metric: value}, {metric: why skipped})."""
    values, skipped = {}, {}
    if params.inception_path:
        values["inception_fid"] = inception_fid(params.inception_path, generated, real, device)
    else:
        skipped["inception_fid"] = "evaluate.inception_path is not set"
    if params.clip_path:
        values["clip_score"] = reference_clip_score(params.clip_path, generated, texts, device)
    else:
        skipped["clip_score"] = "evaluate.clip_path is not set"
    return values, skipped
