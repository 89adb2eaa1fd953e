"""embed_text's library: dedup, key joins, dtypes, determinism, and the model-mismatch check."""

from __future__ import annotations

import random

import pytest
import torch
from safetensors.torch import load_file

from minisd.caches import CacheError, TextCache
from minisd.caches.embed import encode_texts, write_text_cache
from minisd.caches.parallel import read_all_meta
from minisd.shards import write_split
from _caches import (
    fresh_accelerator, make_samples, tiny_text_encoder, tiny_tokenizer, write_shards,
)

PROMPTS = [{"text": "a tree", "class": None, "attributes": {"size": None, "position": None}, "key": None}]


def build(tmp_path, meta, *, dtype="float16", batch_size=4, encoder=None, name="text", prompts=PROMPTS):
    tokenizer = tiny_tokenizer()
    encoder = encoder or tiny_text_encoder(tokenizer)
    out = tmp_path / name
    out.mkdir()
    write_text_cache(
        out, fresh_accelerator(), tokenizer, encoder, meta, prompts,
        batch_size=batch_size, dtype=dtype, encoder_hash="enc-A", tokenizer_hash="tok-A",
    )
    return TextCache.open(out), tokenizer, encoder


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("proj"), n_train=24, n_val=12, k=9)


def test_dedup_gives_one_row_per_distinct_text(tmp_path):
    shards = tmp_path / "shards"
    write_split(make_samples(40, 5, multi=False), shards, "train", 2)
    write_split(make_samples(10, 5, multi=False, prefix="v"), shards, "val", 1)
    cache, _, _ = build(tmp_path, read_all_meta(shards))
    assert len(cache) == 5 + 1 + 1  # K captions + "" + the one eval prompt not among them
    assert cache.embeddings.shape == (7, 77, 32)
    assert cache.captions[cache.empty_row] == ""
    keys = cache.keys("train")
    assert len(keys) == 40 and len({tuple(cache.rows_for(k)) for k in keys}) == 5


def test_multi_caption_samples_keep_all_captions(tmp_path, shards):
    meta = read_all_meta(shards)
    cache, _, _ = build(tmp_path, meta)
    for sample in meta["train"] + meta["val"]:
        assert [cache.captions[r] for r in cache.rows_for(sample.key)] == sample.captions
    assert len(cache) == len({c for s in meta["train"] + meta["val"] for c in s.captions}) + 2
    assert [cache.captions[r] for r in cache.prompt_rows] == ["a tree"]
    assert cache.prompts == PROMPTS


def test_key_join_survives_shuffling(tmp_path, shards):
    meta = read_all_meta(shards)
    cache, tokenizer, encoder = build(tmp_path, meta, dtype="float32")
    samples = meta["train"] + meta["val"]
    random.Random(0).shuffle(samples)
    accelerator = fresh_accelerator()
    rows = torch.tensor([cache.rows_for(s.key)[0] for s in samples])
    expected = encode_texts(tokenizer, encoder, [s.captions[0] for s in samples], accelerator)
    torch.testing.assert_close(cache.embeddings[rows], expected, atol=1e-5, rtol=1e-4)
    empty = encode_texts(tokenizer, encoder, [""], accelerator)[0]
    torch.testing.assert_close(cache.embeddings[cache.empty_row], empty, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_dtype_round_trip(tmp_path, shards, dtype):
    cache, tokenizer, encoder = build(tmp_path, read_all_meta(shards), dtype=dtype, batch_size=1)
    want = getattr(torch, dtype)
    assert cache.embeddings.dtype == want and cache.dtype == dtype
    accelerator = fresh_accelerator()
    for row in (0, len(cache) - 1):  # same batch composition (size 1) as the cache: exact equality
        expected = encode_texts(tokenizer, encoder, [cache.captions[row]], accelerator)[0].to(want)
        assert torch.equal(cache.embeddings[row], expected)
    # the file is plain safetensors: the reference loader sees the same tensor
    assert torch.equal(load_file(cache.folder / "embeddings.safetensors")["embeddings"], cache.embeddings)


def test_deterministic_bytes(tmp_path, shards):
    meta = read_all_meta(shards)
    a, _, _ = build(tmp_path, meta, name="a")
    b, _, _ = build(tmp_path, meta, name="b")
    for name in ("embeddings.safetensors", "index.json", "prompts.json"):
        assert (a.folder / name).read_bytes() == (b.folder / name).read_bytes(), name


def test_cache_from_another_text_encoder_is_refused(tmp_path, shards):
    tokenizer = tiny_tokenizer()
    mine, other = tiny_text_encoder(tokenizer, seed=0), tiny_text_encoder(tokenizer, seed=1)
    mine.save_pretrained(tmp_path / "mine")
    other.save_pretrained(tmp_path / "other")
    tokenizer.save_pretrained(tmp_path / "tok")
    from minisd.components import weights_hash

    out = tmp_path / "text"
    out.mkdir()
    write_text_cache(
        out, fresh_accelerator(), tokenizer, mine, read_all_meta(shards), PROMPTS, batch_size=8, dtype="float16",
        encoder_hash=weights_hash(tmp_path / "mine"), tokenizer_hash=weights_hash(tmp_path / "tok"),
    )
    cache = TextCache.open(out)
    cache.check_models(tmp_path / "mine", tmp_path / "tok")  # the right models pass
    with pytest.raises(CacheError, match="different text encoder.*rerun `dvc repro embed_text`"):
        cache.check_models(text_encoder_dir=tmp_path / "other")
    with pytest.raises(CacheError, match="different tokenizer"):
        cache.check(tokenizer_hash="not-the-one")


def test_unknown_key_or_text_and_missing_cache_are_clear(tmp_path, shards):
    cache, _, _ = build(tmp_path, read_all_meta(shards))
    with pytest.raises(KeyError, match="nope"):
        cache.rows_for("nope")
    with pytest.raises(KeyError, match="never seen"):
        cache.row_of("never seen")
    with pytest.raises(CacheError, match="run `dvc repro embed_text`"):
        TextCache.open(tmp_path / "missing")


def test_fixture_samples_are_distinct():
    samples = make_samples(10, 3)
    assert len({s.key for s in samples}) == 10
    assert len({s.captions[0] for s in samples}) == 3
    assert len({s.image.tobytes() for s in samples}) == 10


def test_oracle_cache_adds_one_vector_per_named_word_at_every_token(tmp_path, shards):
    """benchmarks/oracle_text.py: the issue-11 oracle, which sweep rows are compared against."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from oracle_text import caption_words, oracle_states

    cache, _, _ = build(tmp_path, read_all_meta(shards))
    named = caption_words(shards, cache.prompts)
    assert named["a sketch of a star"] == {"class": "star"}  # only the words a caption says
    states, summary = oracle_states(cache, named, strength=1.0, seed=0)
    delta = states - cache.embeddings.float()
    assert summary["vectors"] == 3 + 3 + 9  # classes, sizes, positions of the 9 captions
    assert torch.count_nonzero(delta[cache.empty_row]) == 0 and torch.count_nonzero(delta[cache.row_of("a tree")]) == 0
    star, full = delta[cache.row_of("a sketch of a star")], delta[cache.row_of("a small star in the top left")]
    assert torch.allclose(star, star[0].expand_as(star))  # the same vector at every token, padding included
    assert star.abs().sum() > 0
    assert torch.allclose(full, full[0].expand_as(full))
    small_top_left = full[0] - star[0]  # the star vector is shared; what is left is "small" + "top left"
    house = delta[cache.row_of("a sketch of a house")][0]
    small_top = delta[cache.row_of("a small house in the top")][0] - house
    assert not torch.allclose(small_top_left, small_top, atol=1e-2)  # "top left" and "top" are different words
