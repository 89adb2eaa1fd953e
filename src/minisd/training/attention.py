"""Which attention kernel a trainer runs: plain matmul + softmax where torch's fused one is slow.

On a CPU under bf16, scaled_dot_product_attention picks torch's CPU flash kernel, whose backward
costs about 9x its forward at this project's lengths (16-64 latent positions, 32 caption tokens):
22% of a UNet step. Attention as matmul + softmax computes the same function and trained the
UNet 1.2x and the CLIP 1.8x faster there (README, performance). In fp32 the two are within 6% of
each other and on CUDA the fused kernels win, so everywhere else the libraries' default stays.
Only training changes: nothing about the kernel is saved, so exported models load as before.
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import AttnProcessor


def fused_attention_is_slow(device: torch.device, mixed_precision: str) -> bool:
    """`mixed_precision` as accelerate names it ("no", "bf16", "fp16")."""
    return device.type == "cpu" and mixed_precision == "bf16"


def use_matmul_attention(model) -> None:
    """A diffusers model gets the classic AttnProcessor, a transformers model its "eager" attention."""
    if hasattr(model, "set_attn_processor"):
        model.set_attn_processor(AttnProcessor())
    else:
        model.set_attn_implementation("eager")


def train_with_fast_attention(model, accelerator) -> None:
    """Call before training `model` with `accelerator`: switches the kernel where the fused one is slow."""
    if fused_attention_is_slow(accelerator.device, accelerator.mixed_precision):
        use_matmul_attention(model)
