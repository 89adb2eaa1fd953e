"""The `evaluate` section: sampling, metrics and the exported pipeline's model card."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from minisd.params.base import Section


# Also the defaults of `generate` and the demo. Guidance 4 with Lin et al. 2023's rescale (the guided
# prediction scaled back to the conditional one's spread) against plain guidance 3, over 840 samples:
# class 0.887 -> 0.899, sketch-FID 1.6-1.8x -> 1.2-1.35x its floor, strokes 6.8 -> 6.0 px (README)
GUIDANCE = 4.0
GUIDANCE_RESCALE = 1.0
GUIDANCE_RESCALE_RANGE = (0.0, 1.0)  # 0 = plain guidance, 1 = the conditional spread exactly


class EvaluateParams(Section):
    samples_per_prompt: int = Field(4, gt=0)
    steps: int = Field(20, gt=0)
    guidance: float = Field(GUIDANCE, ge=0)
    guidance_rescale: float = Field(GUIDANCE_RESCALE, ge=GUIDANCE_RESCALE_RANGE[0], le=GUIDANCE_RESCALE_RANGE[1])
    scheduler: Literal["dpmsolver++", "ddim", "euler", "ddpm"] = "dpmsolver++"
    batch_size: int = Field(16, gt=0)
    seed: int = 0
    grid_seeds: int = Field(4, gt=0)  # columns of the sample grid
    inception_path: str | None = None  # local Inception weights for standard FID; skipped if unset
    clip_path: str | None = None  # local CLIP model folder for CLIP score; skipped if unset
    license: str = Field("other", min_length=1)  # the model card's hub license id, e.g. cc-by-4.0
