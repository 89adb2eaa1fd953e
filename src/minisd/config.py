"""Typed, validated params: every stage reads its section through here, once.

`load_params()` parses `params.yaml` into these models. A bad value fails at once with a
`ParamsError` naming the dotted key (`unet.lr: Input should be greater than 0`), and unknown
keys are rejected so a typo never silently falls back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MixedPrecision = Literal["auto", "no", "bf16", "fp16"]
CacheDtype = Literal["float16", "bfloat16", "float32"]


class ParamsError(ValueError):
    """A params file that does not validate; the message names every bad key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------- ingest


class SyntheticSource(Section):
    kind: Literal["synthetic"]
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]+$")  # key prefix; default "synthetic"
    count: int = Field(6000, gt=0)
    seed: int = 0


class ImageFolderSource(Section):
    kind: Literal["imagefolder"]
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]+$")  # key prefix; default: folder name
    path: str
    caption_column: str = "text"
    label_column: str | None = None


class QuickDrawSource(Section):
    kind: Literal["quickdraw"]
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]+$")  # key prefix; default: file/folder name
    path: str
    caption_template: str = "a sketch of {a_word}"  # {a_word}: the class with its article ("an airplane")
    recognized_only: bool = True
    max_per_class: int | None = Field(None, gt=0)
    stroke_width: float = Field(2.0, gt=0)
    # true: each drawing at a seeded random size and 3x3 place, captioned with its class and its
    # measured size and place in the synthetic source's templates (caption_template then unused)
    layout: bool = False
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _one_caption_rule(self):
        if self.layout and "caption_template" in self.model_fields_set:
            raise ValueError("layout: true writes its own captions (class, size, place); drop caption_template")
        return self


Source = Annotated[Union[SyntheticSource, ImageFolderSource, QuickDrawSource], Field(discriminator="kind")]


class NormalizeParams(Section):
    margin: float = Field(0.08, ge=0, lt=0.5)
    flatten_illumination: bool = True
    denoise: bool = True
    binarize: bool = False
    stroke_width: float | None = Field(None, gt=0)  # target stroke width in output pixels; None keeps it


class GateParams(Section):
    min_side: int = Field(16, gt=0)
    max_pixels: int = Field(50_000_000, gt=0)
    min_ink: float = Field(0.002, ge=0, le=1)
    max_ink: float = Field(0.6, ge=0, le=1)
    near_duplicate_distance: int = Field(10, ge=-1, le=256)  # bits of the 256-bit pHash; -1 disables


class IngestParams(Section):
    image_size: int = Field(128, ge=16)
    val_fraction: float = Field(0.1, gt=0, lt=1)
    shard_size: int = Field(2000, gt=0)
    min_shards: int = Field(2, gt=0)  # per split: at least as many shards as loader workers
    workers: int = Field(2, ge=0)  # 0 = in-process
    normalize: NormalizeParams = NormalizeParams()
    gates: GateParams = GateParams()
    sources: list[Source] = Field(min_length=1)


# ----------------------------------------------------------------------------- components


class PretrainedRef(Section):
    """Where `source: pretrained` loads from: a hub id or a local folder."""

    source: Literal["scratch", "pretrained"] = "scratch"
    path: str | None = None
    subfolder: str | None = None

    @model_validator(mode="after")
    def _path_for_pretrained(self):
        if self.source == "pretrained" and not self.path:
            raise ValueError("source: pretrained needs `path` (a hub id or a local folder)")
        return self


class LoopParams(Section):
    """The fields `training.loop.fit` reads (`Schedule.from_params`), shared by every step-counted trainer;
    each trainer's section below overrides only the defaults that differ."""

    max_steps: int = Field(1000, gt=0)
    max_minutes: float | None = Field(None, gt=0)  # opt-in wall-clock budget: stops early, saves (not reproducible)
    mixed_precision: MixedPrecision = "auto"  # bf16 on CPUs with native bf16 and on GPUs; fp32 on AVX2-only CPUs
    log_every: int = Field(10, gt=0)
    val_every: int = Field(250, gt=0)
    checkpoint_every: int = Field(250, gt=0)
    checkpoints_keep: int = Field(2, gt=0)


class TokenizerParams(PretrainedRef):
    vocab_size: int = Field(2048, ge=514)  # scratch BPE: 2 x 256 byte tokens + 2 specials + merges
    max_length: int = Field(32, gt=1)  # scratch captions need <= 13; SD's CLIP uses 77


class TextEncoderParams(PretrainedRef):
    hidden_size: int = Field(128, gt=0)
    num_layers: int = Field(4, gt=0)
    num_heads: int = Field(4, gt=0)
    intermediate_size: int = Field(512, gt=0)
    seed: int = 0


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
    full_size_steps: int = Field(30, ge=0)  # the last N steps train on full images, after the crops
    lr: float = Field(2e-3, gt=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = Field(30, ge=0)
    max_steps: int = Field(300, gt=0)
    grad_clip: float | None = Field(1.0, gt=0)
    ema_decay: float | None = Field(None, gt=0, lt=1)
    decoder_only: bool = False
    loss: LossWeights = LossWeights()
    val_every: int = Field(500, gt=0)
    val_samples: int = Field(256, gt=0)  # first N val images, scored at full size
    log_every: int = Field(25, gt=0)
    checkpoint_every: int = Field(100, gt=0)


class ClipParams(LoopParams):
    """train_clip: the vision tower's shape and the contrastive training recipe (text tower: `text_encoder`)."""

    image_size: int = Field(48, ge=8)  # sketches are downscaled to this side for the ViT
    patch_size: int = Field(8, gt=0)
    hidden_size: int = Field(128, gt=0)
    num_layers: int = Field(2, gt=0)
    num_heads: int = Field(4, gt=0)
    intermediate_size: int = Field(512, gt=0)
    projection_dim: int = Field(128, gt=0)
    sincos_positions: bool = False  # start the ViT's patch positions from 2-D sine-cosine, not noise
    ink_coordinates: bool = True  # ViT input: gray + the ink's x and y (clip/data.py: clip_pixels)
    ink_crop: bool = False  # ViT gray channel: the ink's bounding square, scaled to fill the frame
    temperature: float = Field(0.07, gt=0, le=1)  # initial softmax temperature (learned from there)
    seed: int = 0
    batch_size: int = Field(64, gt=1)  # per process; contrastive: larger batches, more negatives
    layout_groups: int | None = Field(None, gt=0)  # batches of same-layout groups (clip/batches.py); null: uniform
    lr: float = Field(2e-3, gt=0)
    warmup_steps: int = Field(20, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    max_steps: int = Field(2800, gt=0)
    grad_clip: float | None = Field(1.0, gt=0)
    val_every: int = Field(350, gt=0)
    checkpoint_every: int = Field(350, gt=0)

    @model_validator(mode="after")
    def _groups_divide_batch(self):
        if self.layout_groups and self.batch_size % self.layout_groups:
            raise ValueError(f"layout_groups ({self.layout_groups}) must divide batch_size ({self.batch_size})")
        if self.ink_crop and not self.ink_coordinates:
            raise ValueError("ink_crop needs ink_coordinates: true (the coordinates are what keep size and position)")
        return self


# ----------------------------------------------------------------------------- caches


class CacheParams(Section):
    batch_size: int = Field(64, gt=0)
    dtype: CacheDtype = "float16"
    mixed_precision: MixedPrecision = "auto"


class LatentCacheParams(CacheParams):
    chunk_size: int = Field(4096, gt=0)  # samples per safetensors chunk


class PromptParams(Section):
    per_class: int = Field(3, ge=0)  # labelled eval prompts drawn from val captions per class
    extra: list[str] = []  # free-text prompts, shown in grids but not scored


# ----------------------------------------------------------------------------- unet


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
    repa_weight: float = Field(0.5, ge=0)
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
        return self


# ----------------------------------------------------------------------------- judge and evaluation


class JudgeParams(Section):
    channels: list[int] = Field(default=[16, 32, 64, 128], min_length=1)  # one conv + 2x pool each
    image_size: int = Field(64, ge=16)  # the judge looks at downscaled images
    batch_size: int = Field(64, gt=0)
    lr: float = Field(3e-3, gt=0)
    epochs: int = Field(3, gt=0)
    augment: bool = True  # shift/scale/stroke jitter so generated-sketch style does not flip the class
    seed: int = 0


class EvaluateParams(Section):
    samples_per_prompt: int = Field(4, gt=0)
    steps: int = Field(20, gt=0)
    guidance: float = Field(4.0, ge=0)
    scheduler: Literal["dpmsolver++", "ddim", "euler", "ddpm"] = "dpmsolver++"
    batch_size: int = Field(16, gt=0)
    seed: int = 0
    grid_seeds: int = Field(4, gt=0)  # columns of the sample grid
    inception_path: str | None = None  # local Inception weights for standard FID; skipped if unset
    clip_path: str | None = None  # local CLIP model folder for CLIP score; skipped if unset
    license: str = Field("other", min_length=1)  # the model card's hub license id, e.g. cc-by-4.0


class Params(Section):
    ingest: IngestParams
    tokenizer: TokenizerParams = TokenizerParams()
    text_encoder: TextEncoderParams = TextEncoderParams()
    clip: ClipParams = ClipParams()
    vae: VaeParams = VaeParams()
    embed_text: CacheParams = CacheParams()
    encode_latents: LatentCacheParams = LatentCacheParams()
    prompts: PromptParams = PromptParams()
    unet: UnetParams = UnetParams()
    judge: JudgeParams = JudgeParams()
    evaluate: EvaluateParams = EvaluateParams()


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid params"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        got = item.get("input")
        shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
        lines.append(f"  {key}: {item['msg']}{shown}")
    return "\n".join(lines)


def parse_params(raw: dict, source: str = "params") -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ParamsError(_describe(error, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found (run from the project root)")
    with path.open() as f:
        raw = yaml.safe_load(f) or {}
    return parse_params(raw, str(path))
