"""The `evaluate` section: sampling, metrics and the exported pipeline's model card."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from minisd.params.base import Section


GUIDANCE = 3.0  # also the default of `generate` and the demo: 4 -> 3 lowered sketch-FID at the same class (README)


class EvaluateParams(Section):
    samples_per_prompt: int = Field(4, gt=0)
    steps: int = Field(20, gt=0)
    guidance: float = Field(GUIDANCE, ge=0)
    scheduler: Literal["dpmsolver++", "ddim", "euler", "ddpm"] = "dpmsolver++"
    batch_size: int = Field(16, gt=0)
    seed: int = 0
    grid_seeds: int = Field(4, gt=0)  # columns of the sample grid
    inception_path: str | None = None  # local Inception weights for standard FID; skipped if unset
    clip_path: str | None = None  # local CLIP model folder for CLIP score; skipped if unset
    license: str = Field("other", min_length=1)  # the model card's hub license id, e.g. cc-by-4.0
