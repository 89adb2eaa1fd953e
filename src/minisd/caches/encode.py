"""The encode_latents stage: every train and val sample's latent distribution by the VAE that train_vae
saved, keyed by sample key, into the latent cache (read by `latent_cache.LatentCache`).

Work is split by shard (process i takes every num_processes-th shard) and each shard is written as
its own chunk files, cut at fixed sample counts; batches never cross a chunk. A chunk's bytes thus
depend only on its shard, not on how many processes ran, and no merge step is needed: the main
process only writes the index once every process is done.
"""

from __future__ import annotations

import json
import logging
import tarfile
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from accelerate import Accelerator
from diffusers import AutoencoderKL
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from safetensors import safe_open
from tqdm.auto import tqdm

from minisd import paths
from minisd.caches.latent_cache import INDEX, LATENT_FORMAT
from minisd.caches.parallel import batches, fresh_dir, make_inference_accelerator, shard_jobs
from minisd.caches.storage import CacheError, cache_dtype, write_stream
from minisd.components import weights_hash
from minisd.params.caches import LatentCacheParams
from minisd.shards import SPLITS, Sample, iter_samples, shard_paths
from minisd.pixels import to_pixels

log = logging.getLogger("minisd.caches")
META = "minisd"  # the one safetensors metadata key (JSON), so header bytes never depend on map order


def encode_images(vae, images: np.ndarray, accelerator: Accelerator) -> tuple[torch.Tensor, torch.Tensor]:
    """Unscaled latent (mean, std), float32 on CPU. The network runs under autocast; turning its
    moments into mean and std happens in float32 so std keeps its precision."""
    x = to_pixels(images, vae.config.in_channels).to(accelerator.device)  # the VAE's own input convention
    x = x.contiguous(memory_format=torch.channels_last)  # NHWC convs: 1.27x on the AVX2 CPU, same latents
    with torch.inference_mode():
        with accelerator.autocast():
            moments = vae.encode(x).latent_dist.parameters
        dist = DiagonalGaussianDistribution(moments.float())
    return dist.mean.cpu(), dist.std.cpu()


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def count_samples(shard: Path) -> int:
    with tarfile.open(shard) as tar:
        return sum(1 for member in tar if member.name.endswith(".json"))


def _stack(samples: list[Sample], shard: Path) -> np.ndarray:
    shape = samples[0].image.shape
    for s in samples:
        if s.image.shape != shape:
            raise CacheError(f"{shard}: sample {s.key!r} is {s.image.shape}, others {shape}; rerun ingest")
    return np.stack([s.image for s in samples])


def encode_shard(
    vae, shard: Path, split: str, out_dir: Path, accelerator: Accelerator, *,
    batch_size: int, chunk_size: int, dtype: torch.dtype, on_batch=lambda n: None,
) -> list[str]:
    """Write `{shard}-{chunk:04d}.safetensors` files; returns the chunk file names."""
    scale = float(vae.config.scaling_factor)
    names = []
    for number, samples in enumerate(_chunks(iter_samples(shard.parent, split, shards=[shard]), chunk_size)):
        images = _stack(samples, shard)
        means, stds = [], []
        for batch in batches(len(samples), batch_size):
            mean, std = encode_images(vae, images[batch.start : batch.stop], accelerator)
            means.append(mean)
            stds.append(std)
            on_batch(len(batch))
        name = f"{shard.stem}-{number:04d}.safetensors"
        mean, std = (torch.cat(parts).mul(scale).to(dtype) for parts in (means, stds))
        meta = {META: json.dumps({"split": split, "shard": shard.name, "keys": [s.key for s in samples]})}
        write_stream(out_dir / name, [("mean", dtype, mean.shape), ("std", dtype, std.shape)], [mean, std], meta)
        names.append(name)
    return names


def _chunk_keys(path: Path) -> tuple[list[str], tuple[int, ...]]:
    with safe_open(str(path), framework="pt") as f:
        keys = json.loads(f.metadata()[META])["keys"]
        shape = tuple(f.get_slice("mean").get_shape())
    return keys, shape


def write_index(out_dir: Path, shards_dir: str | Path, *, vae_hash: str, scaling_factor: float, dtype: str) -> dict:
    """Index of the chunks every process wrote, in shard order; checks nothing is missing or doubled."""
    splits, shape, seen = {}, None, set()
    for split in SPLITS:
        chunks, keys = [], []
        for shard in shard_paths(shards_dir, split):
            for path in sorted(out_dir.glob(f"{shard.stem}-*.safetensors")):
                chunk_keys, chunk_shape = _chunk_keys(path)
                shape = shape or chunk_shape[1:]
                chunks.append({"file": path.name, "count": len(chunk_keys)})
                keys.extend(chunk_keys)
        doubled = seen.intersection(keys) or (len(set(keys)) != len(keys))
        if doubled:
            raise CacheError(f"{out_dir}: sample keys appear more than once in the {split} latents")
        seen.update(keys)
        splits[split] = {"chunks": chunks, "keys": keys}
    if shape is None:
        raise CacheError(f"{shards_dir}: no samples to encode")
    index = {
        "format": LATENT_FORMAT,
        "vae_hash": vae_hash,
        "scaling_factor": scaling_factor,
        "latent_shape": list(shape),
        "dtype": dtype,
        "splits": splits,
    }
    (out_dir / INDEX).write_text(json.dumps(index) + "\n")
    return index


def write_latent_cache(
    out_dir: str | Path, accelerator: Accelerator, vae, shards_dir: str | Path, *,
    batch_size: int, chunk_size: int, dtype: str, vae_hash: str,
) -> None:
    """Encode every shard into the (existing, empty) `out_dir`; collective: every process calls it."""
    out_dir = Path(out_dir)
    torch_dtype = cache_dtype(dtype)
    vae.to(accelerator.device, memory_format=torch.channels_last).eval()
    mine = shard_jobs(shards_dir)[accelerator.process_index :: accelerator.num_processes]
    total = sum(count_samples(shard) for _, shard in mine)
    bar = tqdm(total=total, unit="img", desc="encode_latents", disable=not accelerator.is_local_main_process)
    for split, shard in mine:
        encode_shard(
            vae, shard, split, out_dir, accelerator,
            batch_size=batch_size, chunk_size=chunk_size, dtype=torch_dtype, on_batch=bar.update,
        )
    bar.close()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        index = write_index(
            out_dir, shards_dir, vae_hash=vae_hash, scaling_factor=float(vae.config.scaling_factor), dtype=dtype
        )
        counts = {split: len(entry["keys"]) for split, entry in index["splits"].items()}
        log.info("encode_latents: %s latents of shape %s -> %s", counts, index["latent_shape"], out_dir)
    accelerator.wait_for_everyone()


def encode_latents(
    settings: LatentCacheParams,
    shards_dir: Path = paths.SHARDS,
    vae_dir: Path = paths.VAE,
    out_dir: Path = paths.LATENT_CACHE,
) -> None:
    """Every train and val sample through the encoder of the VAE that train_vae saved."""
    accelerator = make_inference_accelerator(settings.mixed_precision)
    log.info("encode_latents: %d process(es), device %s, mixed precision %s",
             accelerator.num_processes, accelerator.device, accelerator.mixed_precision)
    if not Path(vae_dir).is_dir():
        raise FileNotFoundError(f"{vae_dir}: no VAE folder (run `dvc repro train_vae`)")
    vae = AutoencoderKL.from_pretrained(vae_dir).requires_grad_(False)
    write_latent_cache(
        fresh_dir(accelerator, out_dir), accelerator, vae, shards_dir,
        batch_size=settings.batch_size, chunk_size=settings.chunk_size, dtype=settings.dtype,
        vae_hash=weights_hash(vae_dir),
    )
