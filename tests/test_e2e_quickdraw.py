"""profiles/quickdraw.yaml on real Quick, Draw! files, through the real `dvc repro`, up to the text cache.

A slice of the shared files (../shared/data/quickdraw18: the first 30 lines of each of the 18
categories) goes where a user puts theirs, data/raw/quickdraw/, in a throwaway repo; the profile is
applied as shipped, then shrunk to the tiny profile's model sizes and steps (its data source kept).
What is particular to real drawings ends with the eval prompts chosen from them (`embed_text`); the
stages after it run the same code on any shards, and tests/test_e2e_dvc.py runs them all.
Skipped where the shared files are absent.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import yaml
from _dvc_repo import ROOT, commit, make_repo, sh, stages_run, status

SHARED = ROOT.parent / "shared" / "data" / "quickdraw18"
CATEGORIES = (
    "apple", "backpack", "cake", "candle", "car", "eye", "eyeglasses", "fork", "mouth", "necklace", "piano",
    "power outlet", "shoe", "smiley face", "snowman", "star", "sun", "teapot",
)  # fmt: skip
LINES = 30

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not all((SHARED / f"{c}.ndjson").is_file() for c in CATEGORIES),
                       reason=f"Quick, Draw! files not present at {SHARED}"),
]  # fmt: skip


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = make_repo(tmp_path_factory.mktemp("quickdraw") / "project", "quickdraw")
    tiny = yaml.safe_load((ROOT / "profiles/tiny.yaml").read_text())
    del tiny["ingest"]["sources"]  # tiny's sizes and steps, the quickdraw profile's data
    (path / "profiles/tiny-steps.yaml").write_text(yaml.safe_dump(tiny))
    sh(sys.executable, "-m", "minisd", "profile", "tiny-steps", cwd=path)
    (path / "data/raw/quickdraw").mkdir()
    for category in CATEGORIES:
        head = (SHARED / f"{category}.ndjson").read_bytes().splitlines(keepends=True)[:LINES]
        (path / "data/raw/quickdraw" / f"{category}.ndjson").write_bytes(b"".join(head))
    commit(path, "quickdraw profile, tiny steps, real files in data/raw/quickdraw")
    log = sh("dvc", "repro", "embed_text", cwd=path)
    assert stages_run(log) == {"ingest", "train_clip", "embed_text"}, log
    return path


def test_real_drawings_reach_the_shards_and_the_text_cache(repo):
    report = json.loads((repo / "data/ingest/report.json").read_text())
    source = report["sources"]["quickdraw"]
    assert source["accepted"] > 0.8 * LINES * len(CATEGORIES), source
    assert set(source["reasons"]) <= {"not_recognized", "near_duplicate", "duplicate"}, source
    from minisd.shards import iter_samples

    val_classes = {s.label for s in iter_samples(repo / "data/shards", "val", images=False)}
    clip = json.loads((repo / "results/clip/metrics.json").read_text())
    assert len(val_classes) >= 15 and clip["val"]["zero_shot_chance"] == pytest.approx(1 / len(val_classes))
    assert status(repo, "embed_text") == {}


def test_classes_captions_and_attribute_labels(repo):
    """Every drawing placed, labelled by what its ink measures, captioned with class, size and place."""
    from minisd.attributes import measure
    from minisd.captions import POSITION_PHRASES
    from minisd.shards import iter_samples

    samples = [s for split in ("train", "val") for s in iter_samples(repo / "data/shards", split)]
    assert {s.label for s in samples} == set(CATEGORIES)
    for s in samples:
        assert s.attributes == measure(s.image), s.key
        size, where = s.attributes["size"], POSITION_PHRASES[s.attributes["position"]].split()[-1]
        assert len(s.captions) == 3 and all(s.label in c and size in c and where in c for c in s.captions), s.captions
    assert {s.attributes["size"] for s in samples} == {"small", "medium", "large"}
    assert len({s.attributes["position"] for s in samples}) == 9
    prompts = json.loads((repo / "data/cache/text/prompts.json").read_text())
    val_classes = {s.label for s in iter_samples(repo / "data/shards", "val", images=False)}
    assert {p["class"] for p in prompts} == val_classes  # every class with held-out drawings is prompted
    assert all(p["attributes"]["size"] and p["attributes"]["position"] for p in prompts), prompts
