"""The `judge` section: the class judge that evaluate scores samples with."""

from __future__ import annotations

from pydantic import Field

from minisd.params.base import Section


class JudgeParams(Section):
    channels: list[int] = Field(default=[16, 32, 64, 128], min_length=1)  # one conv + 2x pool each
    image_size: int = Field(64, ge=16)  # the judge looks at downscaled images
    batch_size: int = Field(64, gt=0)
    lr: float = Field(3e-3, gt=0)
    epochs: int = Field(3, gt=0)
    augment: bool = True  # shift/scale/stroke jitter so generated-sketch style does not flip the class
    seed: int = 0
