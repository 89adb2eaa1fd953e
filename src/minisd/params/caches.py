"""The `embed_text`, `encode_latents` and `prompts` sections: how the caches are written."""

from __future__ import annotations

from pydantic import Field

from minisd.params.base import CacheDtype, MixedPrecision, Section


class CacheParams(Section):
    batch_size: int = Field(64, gt=0)
    dtype: CacheDtype = "float16"
    mixed_precision: MixedPrecision = "auto"


class LatentCacheParams(CacheParams):
    # 8 images of 128 px keep the encoder's activations in a CPU's cache: 1.4-1.8x (bf16) and 1.3-1.7x
    # (fp32) the images/s of 64 on 2 cores (benchmarks/bench_caches.py; README, encode_latents)
    batch_size: int = Field(8, gt=0)
    chunk_size: int = Field(4096, gt=0)  # samples per safetensors chunk


class PromptParams(Section):
    per_class: int = Field(3, ge=0)  # labelled eval prompts drawn from val captions per class
    extra: list[str] = []  # free-text prompts, shown in grids but not scored
