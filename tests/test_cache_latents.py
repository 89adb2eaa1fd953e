"""encode_latents' library: key joins, chunking, dtypes, determinism, and the VAE-mismatch check."""

from __future__ import annotations

import pickle
import random

import pytest
import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from minisd.caches import CacheError, LatentCache
from minisd.caches.encode import write_latent_cache
from minisd.caches.parallel import read_all_meta
from minisd.shards import iter_samples
from minisd.pixels import to_pixels
from _caches import (
    fresh_accelerator, tiny_vae, write_shards,
)


def build(tmp_path, shards, *, dtype="float16", chunk_size=5, batch_size=3, vae=None, name="latents", vae_hash="v"):
    out = tmp_path / name
    out.mkdir()
    write_latent_cache(
        out, fresh_accelerator(), vae or tiny_vae(), shards,
        batch_size=batch_size, chunk_size=chunk_size, dtype=dtype, vae_hash=vae_hash,
    )
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("proj"), n_train=24, n_val=12, shards=2)


def reference(vae, images) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent distribution computed independently of the cache code, one image at a time."""
    means, stds = [], []
    with torch.no_grad():
        for image in images:
            dist = DiagonalGaussianDistribution(vae.encode(to_pixels(image[None], 3)).latent_dist.parameters)
            means.append(dist.mean[0] * vae.config.scaling_factor)
            stds.append(dist.std[0] * vae.config.scaling_factor)
    return torch.stack(means), torch.stack(stds)


def test_key_join_survives_shuffling(tmp_path, shards):
    """Also the float32 round trip: stored values equal an independent float32 computation."""
    vae = tiny_vae(scaling_factor=0.37)
    out = build(tmp_path, shards, dtype="float32", vae=vae)
    for split in ("train", "val"):
        cache = LatentCache.open(out, split)
        samples = list(iter_samples(shards, split))
        assert sorted(cache.keys) == sorted(s.key for s in samples)
        random.Random(1).shuffle(samples)  # a shuffled loader asks by key, in any order
        mean, std = reference(vae, [s.image for s in samples])
        idx = cache.indices([s.key for s in samples])
        torch.testing.assert_close(cache.mean(idx), mean, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(cache.std(torch.tensor(idx)), std, atol=1e-5, rtol=1e-4)
    assert cache.scaling_factor == pytest.approx(0.37) and cache.latent_shape == (4, 16, 16)
    assert cache.mean(0).dtype == torch.float32 and cache.dtype == "float32"


def test_chunks_and_indexing_forms_agree(tmp_path, shards):
    cache = LatentCache.open(build(tmp_path, shards, chunk_size=5), "train")
    assert len(cache.chunks) == 6 and [c["count"] for c in cache.chunks] == [5, 5, 2] * 2  # 2 shards of 12
    mean, std = cache.load_all()
    assert mean.shape == (24, 4, 16, 16) and std.shape == mean.shape
    assert torch.equal(cache.mean(7), mean[7])
    assert torch.equal(cache.mean(slice(3, 11)), mean[3:11])
    assert torch.equal(cache.std([23, 0, 12, 5]), std[[23, 0, 12, 5]])
    assert (std > 0).all()
    with pytest.raises(IndexError):
        cache.mean([24])


def test_reader_pickles_without_data(tmp_path, shards):
    """DataLoader workers get the reader, not a copy of the latents; they map the files themselves."""
    cache = LatentCache.open(build(tmp_path, shards), "train")
    first = cache.mean([0, 1])
    clone = pickle.loads(pickle.dumps(cache))
    assert len(pickle.dumps(cache)) < 20_000
    assert torch.equal(clone.mean([0, 1]), first)


@pytest.fixture(scope="module")
def float32_cache(tmp_path_factory, shards):
    return LatentCache.open(build(tmp_path_factory.mktemp("f32"), shards, dtype="float32"), "val")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_dtype_round_trip(tmp_path, shards, float32_cache, dtype):
    reference_cache = float32_cache
    cache = LatentCache.open(build(tmp_path, shards, dtype=dtype), "val")
    want = getattr(torch, dtype)
    mean, std = cache.load_all()
    assert mean.dtype == want and std.dtype == want and cache.dtype == dtype
    ref_mean, ref_std = reference_cache.load_all()
    assert torch.equal(mean, ref_mean.to(want)) and torch.equal(std, ref_std.to(want))


def test_deterministic_bytes(tmp_path, shards):
    a, b = build(tmp_path, shards, name="a"), build(tmp_path, shards, name="b")
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir()) and "index.json" in files
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_cache_from_another_vae_is_refused(tmp_path, shards):
    from minisd.components import weights_hash

    tiny_vae(seed=0).save_pretrained(tmp_path / "vae")
    tiny_vae(seed=1).save_pretrained(tmp_path / "retrained")
    cache = LatentCache.open(build(tmp_path, shards, vae_hash=weights_hash(tmp_path / "vae")), "train")
    cache.check_model(tmp_path / "vae")
    with pytest.raises(CacheError, match="different VAE.*rerun `dvc repro encode_latents`"):
        cache.check_model(tmp_path / "retrained")


def test_every_sample_is_cached_once(tmp_path, shards):
    out = build(tmp_path, shards)
    meta = read_all_meta(shards)
    for split in ("train", "val"):
        assert LatentCache.open(out, split).keys == [s.key for s in meta[split]]
    with pytest.raises(CacheError, match="no split 'test'"):
        LatentCache.open(out, "test")
    with pytest.raises(CacheError, match="run `dvc repro encode_latents`"):
        LatentCache.open(tmp_path / "nothing", "train")
