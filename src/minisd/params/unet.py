"""The `unet` section: the denoiser's shape, noise schedule and train_unet's recipe."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from minisd.params.base import LoopParams, Section


class NoiseSchedulerParams(Section):
    num_train_timesteps: int = Field(1000, gt=0)
    beta_schedule: Literal["scaled_linear", "linear", "squaredcos_cap_v2"] = "scaled_linear"
    beta_start: float = Field(0.00085, gt=0)
    beta_end: float = Field(0.012, gt=0)
    prediction_type: Literal["epsilon", "v_prediction"] = "v_prediction"
    rescale_zero_terminal_snr: bool = True


class UnetParams(LoopParams):
    block_out_channels: list[int] = Field(default=[32, 64, 128], min_length=1)
    layers_per_block: int = Field(1, gt=0)
    down_block_types: list[str] = ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]
    up_block_types: list[str] = ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]
    attention_head_dim: int = Field(2, gt=0)  # diffusers: the number of heads
    # "text": the caption, attention-pooled, joins the timestep embedding and so every ResNet block
    # (DeepFloyd IF's conditioning, beside the cross-attention); null: cross-attention only, as SD
    addition_embed_type: Literal["text"] | None = None
    addition_embed_type_num_heads: int = Field(4, gt=0)
    sample_size: int = Field(16, gt=0)
    noise_scheduler: NoiseSchedulerParams = NoiseSchedulerParams()
    seed: int = 0
    batch_size: int = Field(64, gt=0)  # per process
    gradient_accumulation_steps: int = Field(1, gt=0)
    lr: float = Field(2e-3, gt=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = Field(50, ge=0)
    weight_decay: float = Field(1e-2, ge=0)
    max_steps: int = Field(3200, gt=0)
    grad_clip: float | None = Field(1.0, gt=0)
    caption_dropout: float = Field(0.1, ge=0, le=1)
    snr_gamma: float | None = Field(None, gt=0)
    # t = T * u ** (1 / p): 1 uniform; 2 draws noisy timesteps, where layout and class are decided, more often
    timestep_power: float = Field(2.0, gt=0)
    noise_offset: float = Field(0.0, ge=0)
    # REPA (unet/repa.py): weight of the loss pulling the bottleneck toward train_clip's image embedding; 0 off
    repa_weight: float = Field(1.0, ge=0)
    # the UNet blocks REPA aligns, each through its own MLP, their losses summed: diffusers' names
    repa_blocks: list[str] = Field(default=["mid_block"], min_length=1)
    # extra loss weight on latent positions that hold ink (unet/diffusion.py, ink_weights); 0 off
    ink_weight: float = Field(0.0, ge=0)
    ema_decay: float = Field(0.999, gt=0, lt=1)  # the cap; warmup 1 - (1 + step) ** -ema_power below it
    ema_power: float = Field(0.75, gt=0)
    channels_last: bool = False  # NHWC convs: faster with bf16 at seed width (benchmarks/bench_unet.py)
    val_samples: int = Field(128, gt=0)  # fixed val latents/timesteps/noise for a comparable val loss
    sample_every: int = Field(750, gt=0)
    sample_prompts: int = Field(4, ge=0)  # first N prompts of the text cache in preview grids (0: none)
    sample_seeds: int = Field(2, gt=0)
    sample_steps: int = Field(20, gt=0)
    sample_guidance: float = Field(4.0, ge=0)

    @model_validator(mode="after")
    def _blocks_match(self):
        n = len(self.block_out_channels)
        if len(self.down_block_types) != n or len(self.up_block_types) != n:
            raise ValueError(
                f"down_block_types and up_block_types need one entry per block_out_channels ({n})"
            )
        for block in self.repa_blocks:
            kind, _, index = block.partition(".")
            if block != "mid_block" and not (kind in ("down_blocks", "up_blocks") and index.isdigit() and int(index) < n):
                raise ValueError(f"repa_blocks: {block!r} is not a UNet block (mid_block, down_blocks.0..{n - 1}, "
                                 f"up_blocks.0..{n - 1})")  # fmt: skip
        if len(set(self.repa_blocks)) != len(self.repa_blocks):
            raise ValueError(f"repa_blocks: {self.repa_blocks} names a block twice")
        return self
