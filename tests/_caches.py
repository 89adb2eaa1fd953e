"""Tiny shards and models for the cache tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import _tiny_models
from _drawings import doodle
from accelerate.state import AcceleratorState
from diffusers import AutoencoderKL
from transformers import CLIPTextConfig, CLIPTextModel

from minisd.attributes import POSITIONS, SIZES
from minisd.shards import Sample, write_split
from minisd.tokenizer import train_clip_tokenizer

CLASSES = ("star", "house", "cat")
IMAGE = 32


def caption_pool(k: int) -> list[tuple[str, str, str, str]]:
    """k distinct (caption, class, size, position), the caption naming all three."""
    pool = []
    for i in range(k):
        cls, size, pos = CLASSES[i % 3], SIZES[(i // 3) % 3], POSITIONS[(i // 9 + i) % 9]
        pool.append((f"a {size} {cls} in the {pos}", cls, size, pos))
    return pool


def make_samples(n: int, k: int, seed: int = 0, prefix: str = "s", multi: bool = True) -> list[Sample]:
    """n samples whose first captions cycle through k distinct texts; every image is different.
    With `multi`, every 4th sample also has a second caption "a sketch of a <class>"."""
    rng = np.random.default_rng(seed)
    pool = caption_pool(k)
    samples = []
    for i in range(n):
        text, cls, size, pos = pool[i % k]
        image = doodle(rng, IMAGE)
        captions = [text] + ([f"a sketch of a {cls}"] if multi and i % 4 == 0 else [])
        samples.append(
            Sample(key=f"{prefix}{i:05d}", image=image, captions=captions, label=cls,
                   attributes={"size": size, "position": pos}, source="test", origin=str(i))
        )
    return samples


def write_shards(root: Path, n_train: int = 24, n_val: int = 12, k: int = 9, shards: int = 2) -> Path:
    out = root / "data" / "shards"
    write_split(make_samples(n_train, k, seed=1, prefix="t"), out, "train", shards)
    write_split(make_samples(n_val, k, seed=2, prefix="v"), out, "val", shards)
    return out


def tiny_tokenizer(captions=None):
    return train_clip_tokenizer(captions or [c[0] for c in caption_pool(9)], vocab_size=600, max_length=77)


def tiny_text_encoder(tokenizer, hidden: int = 32, seed: int = 0) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=tokenizer.model_max_length, projection_dim=hidden,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return CLIPTextModel(config).eval().requires_grad_(False)


def tiny_vae(seed: int = 0, scaling_factor: float = 0.5) -> AutoencoderKL:
    return _tiny_models.tiny_vae(3, (8, 16), IMAGE, scaling_factor, seed)


def fresh_accelerator(mixed_precision: str = "no"):
    """A new single-process CPU Accelerator; accelerate keeps one global state per process, so
    tests that need another precision must reset it first."""
    from accelerate import Accelerator

    AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(mixed_precision=mixed_precision, cpu=True)
