"""profiles/quickdraw.yaml end to end on real Quick, Draw! files, through the real `dvc repro`.

The shared simplified ndjson files (../shared/data/sketches/quickdraw/simplified, 25 drawings per
category) go where a user puts theirs, data/raw/quickdraw/, in a throwaway repo; the profile is
applied as shipped, then shrunk to the tiny profile's model sizes and steps (its data source kept).
Skipped where the shared files are absent.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import yaml
from _dvc_repo import ALL_STAGES, ROOT, commit, make_repo, sh, stages_run, status

SHARED = ROOT.parent / "shared" / "data" / "sketches" / "quickdraw" / "simplified"
CATEGORIES = ("airplane", "bicycle", "bird", "car", "fish", "flower", "house", "star", "sun", "umbrella")  # README's

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
        shutil.copy(SHARED / f"{category}.ndjson", path / "data/raw/quickdraw")
    commit(path, "quickdraw profile, tiny steps, real files in data/raw/quickdraw")
    log = sh("dvc", "repro", cwd=path)
    assert stages_run(log) == ALL_STAGES, log
    return path


def test_every_stage_runs_on_real_sketches(repo):
    report = json.loads((repo / "data/ingest/report.json").read_text())
    source = report["sources"]["quickdraw"]
    assert source["accepted"] > 0.5 * 25 * len(CATEGORIES), source
    assert set(source["reasons"]) <= {"not_recognized", "near_duplicate", "duplicate"}, source
    judge = json.loads((repo / "results/judge/metrics.json").read_text())
    assert judge, "the judge reports metrics on the quickdraw classes"
    metrics = json.loads((repo / "results/eval/metrics.json").read_text())
    for key in ("judge_accuracy", "sketch_clip_score", "sketch_clip_score_real"):
        assert isinstance(metrics.get(key), float), (key, metrics)
    assert status(repo) == {}


def test_captions_and_classes_are_the_categories(repo):
    from minisd.shards import iter_samples

    samples = list(iter_samples(repo / "data/shards", "train", images=False))
    assert {s.label for s in samples} == set(CATEGORIES)
    captions = {s.label: s.captions for s in samples}
    assert captions["umbrella"] == ["a sketch of an umbrella"] and captions["bird"] == ["a sketch of a bird"]
    prompts = json.loads((repo / "data/cache/text/prompts.json").read_text())
    classes = [p["class"] for p in prompts if p["class"]]  # one per class that has val drawings (25 per file here)
    assert classes and len(classes) == len(set(classes)) and set(classes) <= set(CATEGORIES)
