import hashlib

import numpy as np
import pytest

from minisd import attributes
from minisd.shards import Sample, iter_samples, load_images, shard_paths, split_of, to_record, write_split


def make_samples(n):
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        image = np.full((32, 32), 255, np.uint8)
        image[rng.integers(0, 28) :, 5:9] = 0
        samples.append(Sample(key=f"test-{i:04d}", image=image, captions=[f"caption {i}", "shared"], label="bar",
                              attributes={"size": "small"}, source="test", origin=f"/x/{i}.png"))  # fmt: skip
    return samples


def digests(paths):
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def test_round_trip_keeps_everything(tmp_path):
    samples = make_samples(7)
    write_split(samples, tmp_path, "train", 3)
    back = {s.key: s for s in iter_samples(tmp_path, "train")}
    assert set(back) == {s.key for s in samples}
    for s in samples:
        got = back[s.key]
        assert np.array_equal(got.image, s.image)
        assert (got.captions, got.label, got.attributes, got.source, got.origin) == (
            s.captions, s.label, s.attributes, s.source, s.origin)  # fmt: skip


def test_shards_are_byte_identical_across_runs(tmp_path):
    first = digests(write_split(make_samples(5), tmp_path / "a", "val", 2))
    second = digests(write_split(make_samples(5), tmp_path / "b", "val", 2))
    assert first == second


def test_keys_with_dots_are_refused():
    sample = make_samples(1)[0]
    sample.key = "bad.key"
    with pytest.raises(ValueError, match="dot"):
        to_record(sample)


def test_split_is_stable_and_near_the_fraction():
    keys = [f"k{i}" for i in range(4000)]
    splits = [split_of(k, 0.1) for k in keys]
    assert splits == [split_of(k, 0.1) for k in keys]
    assert 0.08 < splits.count("val") / len(keys) < 0.12


def test_missing_split_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="dvc repro ingest"):
        shard_paths(tmp_path, "train")


def test_load_images_stacks(tmp_path):
    write_split(make_samples(4), tmp_path, "train", 2)
    keys, images = load_images(tmp_path, "train")
    assert len(keys) == 4 and images.shape == (4, 32, 32) and images.dtype == np.uint8


@pytest.mark.parametrize(
    "box, size, position",
    [
        ((5, 5, 30, 30), "small", "top left"),
        ((50, 50, 80, 80), "small", "center"),
        ((10, 60, 110, 125), "large", "bottom"),
        ((70, 10, 125, 70), "medium", "top right"),
    ],
)
def test_attributes_from_ink(box, size, position):
    image = np.full((128, 128), 255, np.uint8)
    x0, y0, x1, y1 = box
    image[y0:y1, x0] = image[y0:y1, x1 - 1] = 0
    image[y0, x0:x1] = image[y1 - 1, x0:x1] = 0
    assert attributes.ink_bbox(image) == box
    assert attributes.measure(image) == {"size": size, "position": position}


def test_blank_image_has_no_attributes():
    blank = np.full((16, 16), 255, np.uint8)
    assert attributes.measure(blank) == {"size": None, "position": None}
