"""Tiny synthetic inputs for the UNet tests: learnable class patterns, no caches, no VAE training."""

from __future__ import annotations

import torch

from minisd.params.unet import UnetParams
from minisd.unet.data import CaptionedLatents

CLASSES, TOKENS, HIDDEN = 4, 4, 16


def tiny_params(**overrides) -> UnetParams:
    base = dict(
        block_out_channels=[8, 16], down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
        up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"], attention_head_dim=2, sample_size=8,
        batch_size=8, lr=3e-3, warmup_steps=2, max_steps=8, mixed_precision="no", val_every=4, val_samples=16,
        sample_every=1000, sample_prompts=0, log_every=1, checkpoint_every=2, checkpoints_keep=2,
        repa_weight=0.0,  # the trainer's mechanics; tests/test_repa.py trains with a teacher
    )
    return UnetParams(**{**base, **overrides})


def synthetic_split(n: int = 48, seed: int = 0, size: int = 8) -> CaptionedLatents:
    """Sample i has class i % 4: its latent is that class's fixed pattern, its 2 captions name the class."""
    g = torch.Generator().manual_seed(1234)
    patterns = torch.randn(CLASSES, 4, size, size, generator=g)
    embeddings = torch.randn(2 * CLASSES + 1, TOKENS, HIDDEN, generator=g)  # row 2c, 2c+1: class c; last: ""
    embeddings[-1] = 0
    classes = torch.arange(n) % CLASSES
    noise = torch.randn(n, 4, size, size, generator=torch.Generator().manual_seed(seed))
    mean = patterns[classes] + 0.05 * noise
    std = torch.full_like(mean, 0.05)
    rows = [[2 * int(c), 2 * int(c) + 1] for c in classes]
    return CaptionedLatents(mean=mean.half(), std=std.half(), caption_rows=rows, embeddings=embeddings.half(),
                            empty_row=2 * CLASSES, keys=[f"s{i:04d}" for i in range(n)])


def class_teacher(n: int, dim: int = 8) -> torch.Tensor:
    """REPA targets for synthetic_split(n): sample i gets its class's fixed unit vector (class i % 4)."""
    directions = torch.randn(CLASSES, dim, generator=torch.Generator().manual_seed(5))
    return torch.nn.functional.normalize(directions, dim=1)[torch.arange(n) % CLASSES]


def resume_params() -> UnetParams:
    return tiny_params(max_steps=10, checkpoint_every=3, val_every=5, sample_every=1000)
