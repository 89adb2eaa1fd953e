"""Caches -> training tensors, joined by sample key (never by position) and checked for staleness."""

from __future__ import annotations

import logging
from pathlib import Path

from minisd.stage import StageError
from minisd.unet.data import CaptionedLatents


def join_split(text, latents) -> CaptionedLatents:
    """One split of the latent cache with each sample's caption rows looked up by its key."""
    rows, missing = [], []
    for key in latents.keys:
        try:
            rows.append(list(text.rows_for(key)))
        except KeyError:
            missing.append(key)
    if missing:
        raise StageError(f"{len(missing)} {latents.split} samples have latents but no captions in the text cache "
                         f"(first: {missing[:3]}); rerun embed_text and encode_latents on the same shards")
    mean, std = latents.load_all()
    return CaptionedLatents(mean=mean, std=std, caption_rows=rows, embeddings=text.embeddings,
                            empty_row=text.empty_row, keys=list(latents.keys))


def load_inputs(text_dir: Path, latent_dir: Path, vae_dir: Path | None):
    """(text cache, train split, val split or None, scaling factor) with the VAE hash checked."""
    from minisd.caches import CacheError, LatentCache, TextCache

    text = TextCache.open(text_dir)
    train_cache = LatentCache.open(latent_dir, "train")
    if vae_dir is not None:
        train_cache.check_model(vae_dir)  # the preview decoder must be the VAE that made the latents
    train = join_split(text, train_cache)
    try:
        val_cache = LatentCache.open(latent_dir, "val")
    except CacheError as error:  # no val split: train without a val loss, but say so
        logging.getLogger("minisd.unet").warning("no validation latents (%s): val loss is skipped", error)
        val = None
    else:
        val = join_split(text, val_cache) if len(val_cache) else None
    return text, train, val, train_cache.scaling_factor

