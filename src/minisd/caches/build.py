"""The two caching stages end to end: saved model folders in, cache folders out.

Both load the folders an earlier stage saved (train_clip: tokenizer and text encoder; train_vae:
the VAE), so the rows are made by exactly the files whose hashes the cache records.
"""

from __future__ import annotations

import logging
from pathlib import Path

from diffusers import AutoencoderKL
from transformers import CLIPTextModel, CLIPTokenizer

from minisd import paths
from minisd.caches.embed import write_text_cache
from minisd.caches.encode import write_latent_cache
from minisd.caches.prompts import build_prompts
from minisd.caches.runtime import fresh_dir, make_inference_accelerator, read_all_meta
from minisd.components import weights_hash
from minisd.config import Params

log = logging.getLogger("minisd.caches")
BF16_MIN_HIDDEN = 512  # CPU bf16 autocast: within noise of fp32 at hidden 128, 1.5-2x faster from 512 (measured)


def embed_text(
    params: Params,
    shards_dir: Path = paths.SHARDS,
    tokenizer_dir: Path = paths.TOKENIZER,
    encoder_dir: Path = paths.TEXT_ENCODER,
    out_dir: Path = paths.TEXT_CACHE,
) -> None:
    """Every distinct caption through the frozen text encoder that train_clip saved (trained or pretrained)."""
    for folder, what in ((tokenizer_dir, "tokenizer"), (encoder_dir, "text encoder")):
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"{folder}: no {what} folder (run `dvc repro train_clip`)")
    meta = read_all_meta(shards_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    encoder = CLIPTextModel.from_pretrained(encoder_dir).requires_grad_(False)
    accelerator = make_inference_accelerator(
        params.embed_text.mixed_precision, bf16_pays_on_cpu=encoder.config.hidden_size >= BF16_MIN_HIDDEN
    )
    log.info("embed_text: %d process(es), device %s, mixed precision %s",
             accelerator.num_processes, accelerator.device, accelerator.mixed_precision)
    prompts = build_prompts(meta["val"], params.prompts.per_class, params.prompts.extra)
    write_text_cache(
        fresh_dir(accelerator, out_dir), accelerator, tokenizer, encoder, meta, prompts,
        batch_size=params.embed_text.batch_size, dtype=params.embed_text.dtype,
        encoder_hash=weights_hash(encoder_dir), tokenizer_hash=weights_hash(tokenizer_dir),
    )


def encode_latents(
    params: Params,
    shards_dir: Path = paths.SHARDS,
    vae_dir: Path = paths.VAE,
    out_dir: Path = paths.LATENT_CACHE,
) -> None:
    accelerator = make_inference_accelerator(params.encode_latents.mixed_precision)
    log.info("encode_latents: %d process(es), device %s, mixed precision %s",
             accelerator.num_processes, accelerator.device, accelerator.mixed_precision)
    if not Path(vae_dir).is_dir():
        raise FileNotFoundError(f"{vae_dir}: no VAE folder (run `dvc repro train_vae`)")
    vae = AutoencoderKL.from_pretrained(vae_dir).requires_grad_(False)
    settings = params.encode_latents
    write_latent_cache(
        fresh_dir(accelerator, out_dir), accelerator, vae, shards_dir,
        batch_size=settings.batch_size, chunk_size=settings.chunk_size, dtype=settings.dtype,
        vae_hash=weights_hash(vae_dir),
    )
