"""The whole params file as one model: for the stage that reads every section (evaluate's model
card), profiles, tests and benchmarks. Stages that read a few sections use `params.base.load_sections`,
so they depend only on those sections' modules."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from minisd.params.base import ParamsError, Section, describe, read_params
from minisd.params.caches import CacheParams, LatentCacheParams, PromptParams
from minisd.params.clip import ClipParams
from minisd.params.evaluate import EvaluateParams
from minisd.params.ingest import IngestParams
from minisd.params.judge import JudgeParams
from minisd.params.text import TextEncoderParams, TokenizerParams
from minisd.params.unet import UnetParams
from minisd.params.vae import VaeParams


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


def parse_params(raw: dict, source: str = "params") -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ParamsError(describe(error, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    return parse_params(read_params(path), str(path))
