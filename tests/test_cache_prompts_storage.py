"""Eval prompt selection, and the streamed / memory-mapped safetensors files both caches use."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from minisd.eval_prompts import choose_prompts
from minisd.shards import Sample
from minisd.caches.storage import CacheError, open_mmap, write_stream


def sample(key, cls, size, position, captions=None):
    text = f"a {size} {cls} in the {position}"
    return Sample(key=key, image=None, captions=captions or [text], label=cls,
                      attributes={"size": size, "position": position})


def test_prompts_are_per_class_attribute_diverse_and_deterministic():
    val = [sample(f"k{i}", cls, size, pos)
           for i, (cls, size, pos) in enumerate(
               [(c, s, p) for c in ("star", "cat") for s in ("small", "large") for p in ("top", "center", "left")] * 2)]
    prompts = choose_prompts(val, per_class=3, extra=["a tree at night"])
    assert prompts == choose_prompts(list(reversed(val)), per_class=3, extra=["a tree at night"])
    stars = [p for p in prompts if p["class"] == "star"]
    assert len(stars) == 3 and [p["class"] for p in prompts[:3]] == ["cat"] * 3  # classes sorted
    assert len({p["key"] for p in stars}) == 3 and len({p["text"] for p in stars}) == 3
    assert len({p["attributes"]["position"] for p in stars}) == 3  # three positions, not three "top"s
    assert len({p["attributes"]["size"] for p in stars}) == 2
    assert prompts[-1] == {"text": "a tree at night", "class": None,
                           "attributes": {"size": None, "position": None}, "key": None}


def test_prompt_labels_only_what_the_caption_says():
    val = [sample("a", "star", "small", "top left", captions=["a star", "a small star"]),
           sample("b", "cat", "large", "center", captions=["cat"])]
    prompts = choose_prompts(val, per_class=1, extra=[])
    by_class = {p["class"]: p for p in prompts}
    assert by_class["star"]["text"] == "a small star"  # the caption naming the most attributes
    assert by_class["star"]["attributes"] == {"size": "small", "position": None}
    assert by_class["cat"]["attributes"] == {"size": None, "position": None}


def test_prompts_without_classes_still_exist():
    val = [Sample(key=f"k{i}", image=None, captions=[f"photo {i}"], label=None, attributes={}) for i in range(5)]
    prompts = choose_prompts(val, per_class=2, extra=[])
    assert len(prompts) == 2 and all(p["class"] is None for p in prompts)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_stream_written_file_reads_back_exactly(tmp_path, dtype):
    data = torch.randn(10, 3, 5).to(dtype)
    path = tmp_path / "x.safetensors"
    write_stream(path, [("x", dtype, (10, 3, 5))], [data[:4], data[4:9], data[9:]], metadata={"k": "v"})
    tensors, metadata = open_mmap(path)
    assert tensors["x"].dtype == dtype and torch.equal(tensors["x"], data) and metadata == {"k": "v"}
    with safe_open(str(path), framework="pt") as f:  # and the reference reader agrees
        assert torch.equal(f.get_tensor("x"), data) and f.metadata() == {"k": "v"}
    tensors["x"][0] = 0  # copy-on-write: the file is untouched
    assert torch.equal(open_mmap(path)[0]["x"], data)


def test_stream_with_wrong_byte_count_fails_and_leaves_nothing(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(CacheError, match="header declares"):
        write_stream(path, [("x", torch.float32, (4, 2))], [torch.zeros(3, 2)])
    assert not list(tmp_path.iterdir())
