"""The `vae` section: the autoencoder's shape and train_vae's recipe."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from minisd.params.base import LoopParams, PretrainedRef, Section


class LossWeights(Section):
    l1: float = Field(1.0, ge=0)
    mse: float = Field(1.0, ge=0)
    kl: float = Field(1e-6, ge=0)
    ink: float = Field(1.0, ge=0)  # extra weight on pixels that are ink in the target
    lpips: float = Field(0.0, ge=0)
    lpips_path: str | None = None  # local LPIPS weights; the term is off without them


class VaeParams(PretrainedRef, LoopParams):
    block_out_channels: list[int] = Field(default=[16, 32, 64, 64], min_length=1)
    layers_per_block: int = Field(1, gt=0)
    latent_channels: int = Field(4, gt=0)
    seed: int = 0
    batch_size: int = Field(16, gt=0)
    crop_size: int | None = Field(64, gt=0)  # random crops for speed; None trains on full images
    full_size_steps: int = Field(100, ge=0)  # the last N steps train on full images, after the crops
    lr: float = Field(2e-3, gt=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = Field(30, ge=0)
    max_steps: int = Field(300, gt=0)
    grad_clip: float | None = Field(1.0, gt=0)
    ema_decay: float | None = Field(None, gt=0, lt=1)
    decoder_only: bool = False
    # after max_steps: the decoder alone on whole pages, its latents with extra noise of scale U(0, decoder_noise)
    # in scaled (the UNet's) units, at a constant decoder_lr; the encoder, so the latents and the UNet, unchanged
    decoder_steps: int = Field(200, ge=0)
    decoder_noise: float = Field(0.3, ge=0)
    decoder_lr: float = Field(2e-4, gt=0)
    loss: LossWeights = LossWeights()
    val_every: int = Field(500, gt=0)
    val_samples: int = Field(256, gt=0)  # first N val images, scored at full size
    log_every: int = Field(25, gt=0)
    checkpoint_every: int = Field(100, gt=0)
