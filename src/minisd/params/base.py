"""Typed, validated params, one module per `params.yaml` section, so a stage imports (and DVC tracks)
only the sections it reads: editing the UNet's params code reruns train_unet, not train_clip.

A stage reads its sections with `load_sections`; a bad value fails at once with a `ParamsError`
naming the dotted key (`unet.lr: Input should be greater than 0`), and unknown keys, top-level or
inside a section, are rejected, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MixedPrecision = Literal["auto", "no", "bf16", "fp16"]
CacheDtype = Literal["float16", "bfloat16", "float32"]

# the sections params.yaml may hold (minisd.config.Params has one field per name; a test keeps them equal)
SECTIONS = ("ingest", "tokenizer", "text_encoder", "clip", "vae", "embed_text", "encode_latents", "prompts",
            "unet", "judge", "evaluate")


class ParamsError(ValueError):
    """A params file that does not validate; the message names every bad key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=Section)


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
    each trainer's section overrides only the defaults that differ."""

    max_steps: int = Field(1000, gt=0)
    max_minutes: float | None = Field(None, gt=0)  # opt-in wall-clock budget: stops early, saves (not reproducible)
    mixed_precision: MixedPrecision = "auto"  # bf16 on CPUs with native bf16 and on GPUs; fp32 on AVX2-only CPUs
    log_every: int = Field(10, gt=0)
    val_every: int = Field(250, gt=0)
    checkpoint_every: int = Field(250, gt=0)
    checkpoints_keep: int = Field(2, gt=0)


def describe(error: ValidationError, source: str, prefix: str = "") -> str:
    lines = [f"{source}: invalid params"]
    for item in error.errors():
        key = ".".join(str(part) for part in ([prefix] if prefix else []) + list(item["loc"]))
        got = item.get("input")
        shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
        lines.append(f"  {key}: {item['msg']}{shown}")
    return "\n".join(lines)


def read_params(path: str | Path = "params.yaml") -> dict:
    """The raw mapping, its top-level keys checked against SECTIONS."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found (run from the project root)")
    with path.open() as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: invalid params\n  the file must hold a mapping of sections, not {type(raw).__name__}")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ParamsError(f"{path}: invalid params\n" + "\n".join(
            f"  {key}: Extra inputs are not permitted (sections: {', '.join(SECTIONS)})" for key in unknown))
    return raw


def validate_section(raw: dict, key: str, model: type[S], source: str = "params") -> S:
    try:
        return model.model_validate(raw.get(key) or {})
    except ValidationError as error:
        raise ParamsError(describe(error, source, key)) from None


def load_sections(path: str | Path = "params.yaml", **models: type[Section]) -> tuple:
    """The named sections of one params file, validated, in the order given:
    `clip, text = load_sections(clip=ClipParams, text_encoder=TextEncoderParams)`."""
    raw = read_params(path)
    return tuple(validate_section(raw, key, model, str(path)) for key, model in models.items())


def load_section(key: str, model: type[S], path: str | Path = "params.yaml") -> S:
    return load_sections(path, **{key: model})[0]
