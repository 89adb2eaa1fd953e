"""Tokenizer, text encoder, VAE and UNet from params: built from config, or loaded pretrained.

`source: scratch` builds each model from its params section with a fixed seed, so the offline
default needs no download and gives byte-identical weights on every run. `source: pretrained`
goes through the libraries' own `from_pretrained` (a hub id or a local folder, plus `subfolder`);
this module is the only place that may reach the hub, and only when params say so.
"""

from __future__ import annotations

import hashlib
import math
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from minisd.config import PretrainedRef, TextEncoderParams, TokenizerParams, UnetParams, VaeParams
from minisd.stage import StageError
from minisd.tokenizer import train_clip_tokenizer

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ComponentError(StageError):
    """A model component that cannot be built or loaded; names the params key to fix."""


# ----------------------------------------------------------------------------- helpers


@contextmanager
def seeded(seed: int):
    """Random init from `seed` without disturbing the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _looks_local(path: str) -> bool:
    return Path(path).exists() or path.startswith((".", "/", "~")) or not HUB_ID.match(path)


def _how_to_fix(section: str, path: str) -> str:
    return (
        f"Set `{section}.path` to a local folder saved with save_pretrained (for a hub model, run "
        f"`huggingface-cli download {path if HUB_ID.match(path) else '<hub-id>'} --local-dir <folder>` "
        f"on a machine with network and copy the folder here; with `{section}.subfolder` if the "
        f"weights sit in a subfolder), or use `{section}.source: scratch`."
    )


def load_pretrained(cls, ref: PretrainedRef, component: str, section: str, **kwargs):
    """`cls.from_pretrained(ref.path, subfolder=ref.subfolder)` with an error that says what to change."""
    path = ref.path
    where = f"{path!r}" + (f" (subfolder {ref.subfolder!r})" if ref.subfolder else "")
    if _looks_local(path) and not Path(path).expanduser().is_dir():
        raise ComponentError(
            f"{component}: `{section}.path` is {where}, which is not an existing folder. " + _how_to_fix(section, path)
        )
    if ref.subfolder:
        if _looks_local(path) and not (Path(path).expanduser() / ref.subfolder).is_dir():
            raise ComponentError(
                f"{component}: `{section}.subfolder` is {ref.subfolder!r}, but {path!r} has no such folder. "
                + _how_to_fix(section, path)
            )
        kwargs["subfolder"] = ref.subfolder
    try:
        return cls.from_pretrained(str(Path(path).expanduser()) if _looks_local(path) else path, **kwargs)
    except (OSError, ValueError) as error:  # offline hub, missing files, bad id (HFValidationError)
        first = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else type(error).__name__
        raise ComponentError(
            f"{component}: cannot load pretrained weights from `{section}.path` = {where}: {first}. "
            + _how_to_fix(section, path)
        ) from error


def param_error(section: str, key: str, message: str) -> ComponentError:
    return ComponentError(f"{section}.{key}: {message}")


# ----------------------------------------------------------------------------- tokenizer and text encoder


def load_tokenizer(params: TokenizerParams, captions: Iterable[str] | None = None) -> CLIPTokenizer:
    if params.source == "pretrained":
        tokenizer = load_pretrained(CLIPTokenizer, params, "tokenizer", "tokenizer")
        tokenizer.model_max_length = params.max_length
        return tokenizer
    captions = list(captions) if captions is not None else []
    if not captions:
        raise ComponentError(
            "tokenizer: `tokenizer.source: scratch` trains a BPE on the training captions, but none were given"
        )
    return train_clip_tokenizer(captions, params.vocab_size, params.max_length)


def text_config(params: TextEncoderParams, tokenizer) -> CLIPTextConfig:
    """The scratch text tower's shape: from the `text_encoder` section, vocabulary and length from the tokenizer."""
    if params.hidden_size % params.num_heads:
        raise param_error(
            "text_encoder", "num_heads", f"{params.num_heads} does not divide hidden_size {params.hidden_size}"
        )
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=params.hidden_size,
        intermediate_size=params.intermediate_size,
        num_hidden_layers=params.num_layers,
        num_attention_heads=params.num_heads,
        max_position_embeddings=tokenizer.model_max_length,
        hidden_act="quick_gelu",
        projection_dim=params.hidden_size,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def load_text_encoder(params: TextEncoderParams, tokenizer) -> CLIPTextModel:
    """Frozen, as SD freezes CLIP: eval mode and no gradients, whichever the source.

    `scratch` gives the random init of the shape `train_clip` trains; the pipeline uses the trained one.
    """
    if params.source == "pretrained":
        model = load_pretrained(CLIPTextModel, params, "text encoder", "text_encoder")
    else:
        with seeded(params.seed):
            model = CLIPTextModel(text_config(params, tokenizer))
    model.eval().requires_grad_(False)
    return model


# ----------------------------------------------------------------------------- VAE and UNet


def norm_groups(section: str, channels: list[int]) -> int:
    """GroupNorm groups: SD's 32 whenever the channels allow it, fewer only for tiny test models."""
    groups = math.gcd(32, *channels)  # a divisor of every width: (48, 96, 192) gets 16
    if groups < 4 or any(c < 8 for c in channels):
        raise param_error(
            section, "block_out_channels", f"{channels}: use multiples of 8 (GroupNorm needs >= 4 groups; SD uses 32)"
        )
    return groups


def load_vae(params: VaeParams) -> AutoencoderKL:
    """Scratch: RGB in/out like SD's VAE, so a pretrained VAE is a drop-in; f = 2**(blocks-1)."""
    if params.source == "pretrained":
        return load_pretrained(AutoencoderKL, params, "VAE", "vae")
    groups = norm_groups("vae", params.block_out_channels)
    n = len(params.block_out_channels)
    with seeded(params.seed):
        return AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * n,
            up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=tuple(params.block_out_channels),
            layers_per_block=params.layers_per_block,
            latent_channels=params.latent_channels,
            norm_num_groups=groups,
        )


def build_unet(params: UnetParams, cross_attention_dim: int, latent_channels: int) -> UNet2DConditionModel:
    """SD's UNet layout at our size. GroupNorm groups: 32 as in SD, fewer only for tiny channel counts."""
    channels = list(params.block_out_channels)
    groups = norm_groups("unet", channels)
    heads = params.attention_head_dim  # diffusers reads this as the number of heads (SD convention)
    for channel, kind in zip(channels, params.down_block_types):
        if "CrossAttn" in kind and channel % heads:
            raise param_error("unet", "attention_head_dim", f"{heads} does not divide block channels {channel}")
    if params.addition_embed_type and cross_attention_dim % params.addition_embed_type_num_heads:
        raise param_error("unet", "addition_embed_type_num_heads",
                          f"{params.addition_embed_type_num_heads} does not divide the text width {cross_attention_dim}")
    try:
        with seeded(params.seed):
            return UNet2DConditionModel(
                sample_size=params.sample_size,
                in_channels=latent_channels,
                out_channels=latent_channels,
                down_block_types=tuple(params.down_block_types),
                up_block_types=tuple(params.up_block_types),
                block_out_channels=tuple(channels),
                layers_per_block=params.layers_per_block,
                cross_attention_dim=cross_attention_dim,
                attention_head_dim=heads,
                norm_num_groups=groups,
                addition_embed_type=params.addition_embed_type,
                addition_embed_type_num_heads=params.addition_embed_type_num_heads,
            )
    except ValueError as error:
        raise ComponentError(f"unet.down_block_types / unet.up_block_types: {error}") from error


# ----------------------------------------------------------------------------- identity of saved models


def weights_hash(folder: str | Path) -> str:
    """sha256 over a saved folder's configs, vocab files and safetensors, by sorted relative path.

    Downstream caches record it, so a retrained model can never be paired with stale caches.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: model folder not found")
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix in {".json", ".txt", ".safetensors"}
    )
    if not any(p.suffix == ".safetensors" for p in files) and not any(p.name == "tokenizer.json" for p in files):
        raise FileNotFoundError(f"{folder}: no *.safetensors weights or tokenizer files to hash")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()
