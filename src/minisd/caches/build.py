"""The two caching stages end to end: models from the component layer in, cache folders out.

The main process builds and saves the tokenizer and text encoder; then every process loads those
saved folders, so the rows are made by exactly the files whose hashes the cache records.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from diffusers import AutoencoderKL
from transformers import CLIPTextModel, CLIPTokenizer

from minisd import paths
from minisd.caches.embed import write_text_cache
from minisd.caches.encode import write_latent_cache
from minisd.caches.prompts import build_prompts
from minisd.caches.runtime import fresh_dir, make_inference_accelerator, process_state, read_all_meta
from minisd.components import load_text_encoder, load_tokenizer, weights_hash
from minisd.config import Params
from minisd.tokenizer import save_tokenizer

log = logging.getLogger("minisd.caches")
BF16_MIN_HIDDEN = 512  # CPU bf16 autocast: within noise of fp32 at hidden 128, 1.5-2x faster from 512 (measured)


def embed_text(
    params: Params,
    shards_dir: Path = paths.SHARDS,
    tokenizer_dir: Path = paths.TOKENIZER,
    encoder_dir: Path = paths.TEXT_ENCODER,
    out_dir: Path = paths.TEXT_CACHE,
) -> None:
    state = process_state()
    meta = read_all_meta(shards_dir)
    if state.is_main_process:
        train_captions = [c for s in meta["train"] for c in s.captions]
        tokenizer = load_tokenizer(params.tokenizer, train_captions)
        for folder in (tokenizer_dir, encoder_dir):
            shutil.rmtree(folder, ignore_errors=True)  # no stale files from another tokenizer in the hash
        save_tokenizer(tokenizer, tokenizer_dir)
        load_text_encoder(params.text_encoder, tokenizer).save_pretrained(encoder_dir)
    state.wait_for_everyone()
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
