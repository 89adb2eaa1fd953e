"""The three source kinds: synthetic doodles, image folders in every caption layout, Quick Draw."""

from __future__ import annotations

import csv
import json
from collections import Counter

import numpy as np
import pytest
from _drawings import doodle
from _ingest import ingest, quickdraw_line, write_png

from minisd.attributes import INK_THRESHOLD, POSITIONS, SIZES, measure
from minisd.captions import POSITION_PHRASES
from minisd.ingest import synthetic
from minisd.ingest.quickdraw import parse_line
from minisd.params.ingest import QuickDrawSource


def test_synthetic_labels_are_measured_and_captions_name_them(tmp_path):
    result = ingest(tmp_path, [{"kind": "synthetic", "count": 140, "seed": 3}])
    samples = result["samples"]
    assert len(samples) + result["report"]["total"]["rejected"] == 140
    assert len(samples) >= 135  # distinct doodles are not near-duplicates of each other
    classes = Counter(s.label for s in samples.values())
    assert len(classes) == len(synthetic.CLASSES) >= 12
    for key, s in samples.items():
        assert "." not in key and key.startswith("synthetic-")
        assert s.image.shape == (128, 128)
        assert s.attributes == measure(s.image)  # evaluation measures generated images the same way
        assert len(s.captions) >= 2 and len(set(s.captions)) == len(s.captions)
        for caption in s.captions:
            assert s.label in caption and s.attributes["size"] in caption and s.attributes["position"] in caption


def test_synthetic_covers_sizes_and_positions():
    seen = Counter()
    for i in range(600):
        s = synthetic.make_sample(i, 0, 128)
        seen[s.attributes["size"], s.attributes["position"]] += 1
    assert {size for size, _ in seen} == set(SIZES)
    assert {pos for _, pos in seen} == set(POSITIONS)
    for size in ("small", "medium"):  # every position for sizes that fit in a corner
        assert all(seen[size, pos] > 0 for pos in POSITIONS), (size, seen)


def test_synthetic_is_a_pure_function_of_seed_and_index():
    a, b = synthetic.make_sample(17, 5, 128), synthetic.make_sample(17, 5, 128)
    assert np.array_equal(a.image, b.image) and a.captions == b.captions
    assert not np.array_equal(a.image, synthetic.make_sample(17, 6, 128).image)
    strokes = [(s.image < INK_THRESHOLD).mean() for s in (synthetic.make_sample(i, 0, 128) for i in range(50))]
    assert min(strokes) > 0.005  # bold enough to survive an 8x downsampled latent


def test_seed_layout_images_and_texts(tmp_path):
    root = tmp_path / "seed"
    for i in range(3):
        write_png(root / "images" / f"d{i}.png", doodle(i))
        (root / "texts").mkdir(exist_ok=True)
        (root / "texts" / f"d{i}.txt").write_text(f"first caption {i}\n\nsecond caption {i}\n")
    result = ingest(tmp_path, [{"kind": "imagefolder", "path": str(root)}])
    assert result["rejects"] == []
    captions = sorted(tuple(s.captions) for s in result["samples"].values())
    assert captions == [(f"first caption {i}", f"second caption {i}") for i in range(3)]  # all lines kept
    assert all(s.label is None and s.source == "seed" for s in result["samples"].values())


def test_hf_metadata_jsonl_nested_and_csv_with_columns(tmp_path):
    root = tmp_path / "hf"
    write_png(root / "cats" / "a.png", doodle(0))
    write_png(root / "cats" / "b.png", doodle(1))
    with open(root / "metadata.jsonl", "w") as f:
        f.write(json.dumps({"file_name": "cats/a.png", "caption": "a cat", "category": "cat"}) + "\n")
        f.write(json.dumps({"file_name": "cats/b.png", "caption": ["a cat", "another cat"], "category": "cat"}) + "\n")
    sub = root / "dogs"
    write_png(sub / "c.png", doodle(2))
    with open(sub / "metadata.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "caption", "category"])
        writer.writerow(["c.png", "a dog", "dog"])
    write_png(root / "side.png", doodle(3))
    (root / "side.txt").write_text("a sidecar caption")
    result = ingest(tmp_path, [{"kind": "imagefolder", "path": str(root), "caption_column": "caption",
                                "label_column": "category"}])  # fmt: skip
    assert result["rejects"] == []
    by_origin = {s.origin.split("/hf/")[1]: s for s in result["samples"].values()}
    assert by_origin["cats/a.png"].captions == ["a cat"] and by_origin["cats/a.png"].label == "cat"
    assert by_origin["cats/b.png"].captions == ["a cat", "another cat"]
    assert by_origin["dogs/c.png"].captions == ["a dog"] and by_origin["dogs/c.png"].label == "dog"
    assert by_origin["side.png"].captions == ["a sidecar caption"] and by_origin["side.png"].label is None


def test_quickdraw_simplified_raw_and_npy(tmp_path):
    root = tmp_path / "qd"
    root.mkdir()
    (root / "cat.ndjson").write_text(quickdraw_line("cat", key_id="111") + "\n" + quickdraw_line("cat", key_id="112",
                                     drawing_=[[[200, 10], [5, 250]]]))  # fmt: skip
    (root / "raw_dog.ndjson").write_text(quickdraw_line("dog", key_id="222", raw=True))  # no final newline
    bitmaps = np.zeros((3, 784), np.uint8)
    for i in range(3):
        b = bitmaps[i].reshape(28, 28)
        b[4 + i : 24, 6:9] = 255  # white ink on black, as Google ships them
        b[20:23, 6 : 20 + i] = 255
    np.save(root / "full_numpy_bitmap_ladder.npy", bitmaps)
    result = ingest(tmp_path, [{"kind": "quickdraw", "path": str(root), "caption_template": "a doodle of a {word}"}])
    assert result["rejects"] == []
    samples = result["samples"]
    assert {"qd-cat-111", "qd-cat-112", "qd-dog-222"} <= set(samples)
    ladders = [s for s in samples.values() if s.label == "ladder"]
    assert len(ladders) == 3 and ladders[0].captions == ["a doodle of a ladder"]
    for s in samples.values():
        ink = s.image < INK_THRESHOLD
        assert s.image.shape == (128, 128) and 0.005 < ink.mean() < 0.5
        assert np.median(s.image) == 255  # black on white, also for the inverted bitmaps
        assert not ink[:5].any() and not ink[-5:].any() and not ink[:, :5].any() and not ink[:, -5:].any()


def test_quickdraw_format_detection_per_line():
    source = QuickDrawSource(kind="quickdraw", path=".")
    _, simplified = parse_line(quickdraw_line().encode(), source)
    _, raw = parse_line(quickdraw_line(raw=True).encode(), source)
    assert [s.shape for s in simplified] == [(3, 2), (2, 2)]
    assert [s.shape for s in raw] == [(3, 2), (1, 2)]  # t dropped, single-point stroke kept as a dot
    assert raw[0][2, 0] == -40.0  # raw coordinates may be negative


def test_quickdraw_caption_template_with_article(tmp_path):
    path = tmp_path / "words.ndjson"
    path.write_text(quickdraw_line("airplane", key_id="1") + "\n" + quickdraw_line("cat", key_id="2",
                    drawing_=[[[0, 200, 30], [250, 0, 90]]]))  # fmt: skip
    result = ingest(tmp_path, [{"kind": "quickdraw", "path": str(path), "caption_template": "a sketch of {a_word}"}])
    assert sorted(s.captions[0] for s in result["samples"].values()) == ["a sketch of a cat", "a sketch of an airplane"]


def _varied_drawing(i: int) -> list:
    """A distinct drawing per i (near-duplicate detection would drop identical ones)."""
    rng = np.random.default_rng(i)
    return [[rng.integers(0, 256, 6).tolist(), rng.integers(0, 256, 6).tolist()] for _ in range(3)]


def test_quickdraw_layout_places_and_captions_what_it_measured(tmp_path):
    root = tmp_path / "qd"
    root.mkdir()
    lines = [quickdraw_line("cake", drawing_=_varied_drawing(i), key_id=str(i)) for i in range(120)]
    (root / "cake.ndjson").write_text("\n".join(lines))
    bitmaps = np.zeros((12, 784), np.uint8)
    for i in range(12):
        bitmaps[i].reshape(28, 28)[3 + i % 5 : 25, 4 + i : 9 + i] = 255
    np.save(root / "full_numpy_bitmap_sail.npy", bitmaps)
    source = {"kind": "quickdraw", "path": str(root), "layout": True, "seed": 3}
    first = ingest(tmp_path / "a", [source])
    samples = first["samples"]
    assert first["rejects"] == [] and len(samples) == 132
    for s in samples.values():
        assert s.attributes == measure(s.image), s.key
        size, position = s.attributes["size"], s.attributes["position"]
        assert len(s.captions) == 3 and len(set(s.captions)) == 3
        assert all(s.label in c and size in c and POSITION_PHRASES[position].split()[-1] in c for c in s.captions), s.captions
    assert {s.attributes["size"] for s in samples.values()} == {"small", "medium", "large"}
    assert len({s.attributes["position"] for s in samples.values()}) == 9, Counter(s.attributes["position"] for s in samples.values())
    assert {s.label for s in samples.values()} == {"cake", "sail"}
    again = ingest(tmp_path / "b", [source], workers=2)  # same seed: the same images and captions, any pool
    assert {k: (s.image.tobytes(), s.captions) for k, s in again["samples"].items()} == \
        {k: (s.image.tobytes(), s.captions) for k, s in samples.items()}  # fmt: skip
    other = ingest(tmp_path / "c", [{**source, "seed": 4}])
    assert sum((other["samples"][k].image != s.image).any() for k, s in samples.items()) > 120


def test_quickdraw_layout_refuses_a_caption_template():
    with pytest.raises(ValueError, match="layout: true writes its own captions.*caption_template"):
        QuickDrawSource(kind="quickdraw", path=".", layout=True, caption_template="a {word}")
