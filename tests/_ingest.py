"""Builders shared by the ingest tests: image files, params, one-call ingest, Quick Draw lines (sketches: _drawings)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from minisd.params.ingest import IngestParams
from minisd.ingest import run_ingest
from minisd.shards import iter_samples


def write_png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def params(sources: list[dict], **overrides) -> IngestParams:
    raw = {"sources": sources, "workers": 0, "shard_size": 50, "min_shards": 2, **overrides}
    return IngestParams.model_validate(raw)


def ingest(tmp_path: Path, sources: list[dict], **overrides) -> dict:
    """Run ingest into tmp_path; returns report, rejects rows and accepted samples (by key)."""
    shards, out = tmp_path / "shards", tmp_path / "ingest"
    report = run_ingest(params(sources, **overrides), shards, out)
    with open(out / "rejects.csv", newline="") as f:
        rejects = list(csv.DictReader(f))
    samples = {s.key: s for split in ("train", "val") for s in iter_samples(shards, split)}
    return {"report": report, "rejects": rejects, "samples": samples, "shards": shards, "out": out}


def reasons(result: dict) -> dict[str, str]:
    """origin file name -> reason"""
    return {Path(r["origin"].split(":")[0]).name: r["reason"] for r in result["rejects"]}


def quickdraw_line(word="cat", drawing_=None, recognized=True, key_id="1", raw=False) -> str:
    if drawing_ is None:
        drawing_ = [[[10, 50, 90], [10, 80, 20]], [[30, 30], [60, 90]]]
        if raw:
            drawing_ = [[[1.5, 300.25, -40.0], [12.0, 400.5, 90.0], [0, 15, 31]], [[7.0], [8.0], [40]]]
    return json.dumps({"word": word, "countrycode": "DE", "timestamp": "x", "recognized": recognized,
                       "key_id": key_id, "drawing": drawing_})  # fmt: skip
