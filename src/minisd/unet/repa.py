"""Representation alignment (REPA, Yu et al. 2024) with the pipeline's own CLIP as the teacher.

The UNet's bottleneck (mid-block output, mean over its grid; `unet.repa_blocks` may name more
blocks), through a small MLP, is pulled toward the CLIP image embedding of the clean sketch, at
every noise level. At the noisy timesteps the
noisy latent says little about the sketch, so the only way to match the embedding (which names the
class, and with `clip.ink_coordinates` where the ink lies) is to read it from the caption through
cross-attention: the class becomes a training target of the bottleneck instead of something the
denoising loss reveals slowly. The teacher is train_clip's CLIP, never the judge, which scores the
result and must stay independent of training. The MLP is training-only: the exported UNet is stock.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from minisd.stage import StageError


def teacher_embeddings(clip_dir: Path, shards_dir: Path, keys: list[str], device="cpu") -> torch.Tensor:
    """(len(keys), D) float32: the CLIP image embedding of each train sketch, in `keys` order."""
    from transformers import CLIPModel

    from minisd.clip.data import model_inputs
    from minisd.clip.metrics import image_embeddings
    from minisd.shards import load_images

    config = Path(clip_dir) / "config.json"
    if not config.is_file():
        raise StageError(f"unet.repa_weight > 0 needs train_clip's CLIP at {clip_dir} (run `dvc repro train_clip`)")
    if "vision_config" not in json.loads(config.read_text()):
        raise StageError(f"unet.repa_weight > 0 needs a CLIP with an image tower, but {clip_dir} holds only a text "
                         "encoder (a pretrained text_encoder.path without one): set unet.repa_weight: 0")
    model = CLIPModel.from_pretrained(clip_dir).to(device).eval()
    shard_keys, images = load_images(shards_dir, "train")
    where = {key: i for i, key in enumerate(shard_keys)}
    missing = [key for key in keys if key not in where]
    if missing:
        raise StageError(f"{len(missing)} cached latents have no sketch in {shards_dir} (first: {missing[:3]}); "
                         "rerun encode_latents on the current shards")
    picked = images[np.array([where[key] for key in keys])]
    return image_embeddings(model, model_inputs(model, Path(clip_dir), picked))


def block_channels(block_out_channels: list[int], block: str) -> int:
    """Output channels of a UNet block named as in diffusers ("mid_block", "down_blocks.1", "up_blocks.0")."""
    if block == "mid_block":
        return block_out_channels[-1]
    kind, index = block.split(".")
    return (block_out_channels if kind == "down_blocks" else block_out_channels[::-1])[int(index)]


class BottleneckAlignment(nn.Module):
    """One MLP per aligned block from its pooled features to the teacher's embedding; hooks keep the
    latest features. The default aligns the bottleneck alone; `blocks` adds earlier or later ones."""

    def __init__(self, unet, teacher_dim: int, blocks: list[str] | tuple[str, ...] = ("mid_block",), hidden: int = 512):
        super().__init__()
        self.blocks = list(blocks)
        self.projectors = nn.ModuleList(
            nn.Sequential(nn.Linear(block_channels(unet.config.block_out_channels, block), hidden), nn.SiLU(),
                          nn.Linear(hidden, teacher_dim))
            for block in self.blocks
        )  # fmt: skip
        self._features: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks):
            unet.get_submodule(block).register_forward_hook(self._keeper(i))

    def _keeper(self, i: int):
        def keep(module, inputs, output) -> None:  # down blocks return (hidden states, skip connections)
            self._features[i] = output[0] if isinstance(output, tuple) else output

        return keep

    def forward(self, targets: torch.Tensor) -> torch.Tensor:
        """Sum over the aligned blocks of 1 - mean cosine between the projected features of the UNet's
        last forward and `targets`."""
        if len(self._features) != len(self.blocks):
            raise RuntimeError("BottleneckAlignment: the UNet has not run since the last loss")
        features, self._features = self._features, {}
        loss = 0.0
        for i, projector in enumerate(self.projectors):
            predicted = projector(features[i].mean(dim=(2, 3))).float()
            loss = loss + 1 - F.cosine_similarity(predicted, targets.to(predicted.device), dim=-1).mean()
        return loss
