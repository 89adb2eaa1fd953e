"""The `ingest` section: sources, line-art normalization and quality gates."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from minisd.params.base import Section


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
