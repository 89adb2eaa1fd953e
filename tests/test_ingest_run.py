"""Outputs, determinism, errors and the shared real samples."""

from __future__ import annotations

import csv
import hashlib
import json
import tarfile
from pathlib import Path

import cv2
import pytest
import webdataset as wds
from _drawings import doodle
from _ingest import ingest, params, write_png

from minisd.ingest import run_ingest
from minisd.shards import decode_png, shard_paths, split_of
from minisd.stage import StageError

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "sketches"


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def mixed_sources(tmp_path: Path) -> list[dict]:
    root = tmp_path / "in" / "pics"
    for i in range(6):
        write_png(root / f"p{i}.png", doodle(i))
        (root / f"p{i}.txt").write_text(f"picture {i}")
    qd = tmp_path / "in" / "qd.ndjson"
    qd.write_text("\n".join(json.dumps({"word": "zig", "recognized": True, "key_id": str(i),
                                         "drawing": [[[0, 40 + 20 * i, 255], [0, 200 - 10 * i, 30 + i]]]})
                            for i in range(6)))  # fmt: skip
    return [{"kind": "synthetic", "count": 40, "seed": 1}, {"kind": "imagefolder", "path": str(root)},
            {"kind": "quickdraw", "path": str(qd)}]  # fmt: skip


def test_webdataset_round_trip(tmp_path):
    result = ingest(tmp_path, mixed_sources(tmp_path), val_fraction=0.3, shard_size=10, min_shards=2)
    urls = [str(p) for split in ("train", "val") for p in shard_paths(result["shards"], split)]
    records = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False))
    assert len(records) == len(result["samples"]) == result["report"]["total"]["accepted"] == 52
    for record in records:
        meta = json.loads(record["json"])
        assert set(meta) >= {"captions", "class", "attributes", "source", "origin"}
        assert meta["captions"] and all(isinstance(c, str) and c for c in meta["captions"])
        image = decode_png(record["png"])
        assert image.shape == (128, 128)
        assert "." not in record["__key__"]
        url = record["__url__"]
        assert Path(url).name.startswith(split_of(record["__key__"], 0.3))
    with tarfile.open(urls[0]) as tar:
        assert {m.mtime for m in tar.getmembers()} == {0}


def test_shard_layout_respects_size_and_minimum(tmp_path):
    result = ingest(tmp_path, [{"kind": "synthetic", "count": 90, "seed": 0}], shard_size=10, min_shards=3,
                    val_fraction=0.05)  # fmt: skip
    splits = result["report"]["splits"]
    for split in ("train", "val"):
        paths = shard_paths(result["shards"], split)
        assert len(paths) == splits[split]["shards"] >= 3
        sizes = [sum(1 for m in tarfile.open(p).getmembers() if m.name.endswith(".png")) for p in paths]
        assert sum(sizes) == splits[split]["samples"] and max(sizes) <= 10


def test_identical_inputs_give_identical_bytes_for_any_worker_count(tmp_path):
    sources = mixed_sources(tmp_path)
    run_ingest(params(sources, workers=0), tmp_path / "a" / "shards", tmp_path / "a" / "ingest")
    run_ingest(params(sources, workers=0), tmp_path / "b" / "shards", tmp_path / "b" / "ingest")
    run_ingest(params(sources, workers=2), tmp_path / "c" / "shards", tmp_path / "c" / "ingest")
    a = digests(tmp_path / "a")
    assert a == digests(tmp_path / "b") == digests(tmp_path / "c")
    assert {"shards/train-000000.tar", "ingest/report.json", "ingest/rejects.csv", "ingest/preview.png"} <= set(a)


def test_rerun_removes_stale_shards(tmp_path):
    ingest(tmp_path, [{"kind": "synthetic", "count": 60}], shard_size=5, min_shards=2)
    result = ingest(tmp_path, [{"kind": "synthetic", "count": 12}], shard_size=5, min_shards=2)
    on_disk = len(list(result["shards"].glob("*.tar")))
    assert on_disk == sum(s["shards"] for s in result["report"]["splits"].values())


def test_preview_is_a_contact_sheet(tmp_path):
    result = ingest(tmp_path, mixed_sources(tmp_path))
    sheet = cv2.imread(str(result["out"] / "preview.png"), cv2.IMREAD_GRAYSCALE)
    assert sheet is not None and sheet.shape[1] == 8 * 128 + 7 * 2 and sheet.shape[0] > 128


def test_missing_path_fails_naming_the_param(tmp_path):
    sources = [{"kind": "synthetic", "count": 5}, {"kind": "imagefolder", "path": str(tmp_path / "nope")}]
    with pytest.raises(StageError, match=r"ingest\.sources\[1\]\.path: .*nope does not exist"):
        run_ingest(params(sources), tmp_path / "s", tmp_path / "o")
    assert not (tmp_path / "s").exists()  # failed before touching any output


def test_bad_options_fail_naming_the_param(tmp_path):
    from minisd.config import ParamsError, parse_params

    with pytest.raises(ParamsError, match=r"ingest\.sources\.0"):
        parse_params({"ingest": {"sources": [{"kind": "flickr", "path": "."}]}})
    with pytest.raises(ParamsError, match=r"ingest\.sources\.0\.quickdraw\.max_per_class"):
        parse_params({"ingest": {"sources": [{"kind": "quickdraw", "path": ".", "max_per_class": 0}]}})
    qd = tmp_path / "x.ndjson"
    qd.write_text("")
    with pytest.raises(StageError, match=r"ingest\.sources\[0\]\.caption_template"):
        run_ingest(params([{"kind": "quickdraw", "path": str(qd), "caption_template": "a {animal}"}]),
                   tmp_path / "s", tmp_path / "o")  # fmt: skip
    with pytest.raises(StageError, match=r"ingest\.sources\[1\]\.name"):
        run_ingest(params([{"kind": "synthetic", "count": 3}, {"kind": "synthetic", "count": 3}]),
                   tmp_path / "s", tmp_path / "o")  # fmt: skip


def test_zero_accepted_fails_but_still_reports(tmp_path):
    root = tmp_path / "junk"
    root.mkdir()
    (root / "a.png").write_bytes(b"nope")
    (root / "a.txt").write_text("caption")
    with pytest.raises(StageError, match="accepted 0 of 1"):
        run_ingest(params([{"kind": "imagefolder", "path": str(root)}]), tmp_path / "s", tmp_path / "o")
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["sources"]["junk"]["reasons"] == {"not_an_image": 1}
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob(".s.tmp-*"))  # staged, never half-written


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real samples not present at {REAL}")
def test_real_samples_every_file_accounted_for(tmp_path):
    """Every file in ../shared/data/sketches becomes a sample or a reject with a reason; none lost."""
    cap = 2  # quickdraw/simplified: 301 files x 25 drawings; every line is still read and recorded
    sources = [
        {"kind": "imagefolder", "path": str(REAL / "sketchy"), "label_column": "category"},
        {"kind": "imagefolder", "path": str(REAL / "tu_berlin_raster"), "label_column": "category"},
        {"kind": "imagefolder", "path": str(REAL / "messy")},
        {"kind": "quickdraw", "path": str(REAL / "quickdraw" / "simplified"), "max_per_class": cap},
        {"kind": "quickdraw", "path": str(REAL / "quickdraw" / "raw")},
    ]
    result = ingest(tmp_path, sources, workers=2, shard_size=500)
    accounted = [s.origin for s in result["samples"].values()] + [r["origin"] for r in result["rejects"]]
    assert len(accounted) == len(set(accounted)) == result["report"]["total"]["seen"]
    expected = []
    for path in sorted(p for p in REAL.rglob("*") if p.is_file()):
        if path.name in ("SOURCES.md", "metadata.jsonl", "metadata.csv"):
            continue
        if path.suffix == ".ndjson":
            lines = [n for n, line in enumerate(path.read_bytes().splitlines(), 1) if line.strip()]
            expected += [f"{path}:{n}" for n in lines]
        else:
            expected.append(str(path))
    assert sorted(accounted) == sorted(expected)
    for name, counts in result["report"]["sources"].items():
        assert counts["accepted"] + counts["rejected"] == counts["seen"], name
        assert sum(counts["reasons"].values()) == counts["rejected"], name
    with open(result["out"] / "rejects.csv", newline="") as f:
        assert all(row["reason"] for row in csv.DictReader(f))
    raster = [s for s in result["samples"].values() if s.source in ("sketchy", "tu_berlin_raster", "messy")]
    assert len(raster) >= 150  # the clean raster sketches all survive normalization
    assert all(s.captions and s.image.shape == (128, 128) for s in raster)


def test_bad_metadata_fails_before_any_output(tmp_path):
    root = tmp_path / "hf"
    write_png(root / "a.png", doodle(0))
    (root / "metadata.jsonl").write_text('{"file_name": "a.png", "caption": "x"}\n')
    sources = [{"kind": "synthetic", "count": 3}, {"kind": "imagefolder", "path": str(root)}]
    with pytest.raises(StageError, match=r"ingest\.sources\[1\]\.caption_column: .*no column 'text'"):
        run_ingest(params(sources), tmp_path / "s", tmp_path / "o")
    assert not (tmp_path / "s").exists() and not (tmp_path / "o").exists()


def test_pool_keeps_order_and_reads_ahead_only_a_window():
    from minisd.ingest.pool import ordered_map

    pulled = []

    def chunks():
        for i in range(200):
            pulled.append(i)
            yield [0] * (i % 7)

    results = ordered_map(len, chunks(), workers=1, initializer=int, initargs=(), window_per_worker=4)
    assert next(results) == 0
    assert len(pulled) <= 5  # memory is bounded by the window, not by the input size
    assert [0] + list(results) == [i % 7 for i in range(200)]
