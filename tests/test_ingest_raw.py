"""Source paths relative to data/raw/, and the check that every source lies inside a dep of `ingest`."""

from __future__ import annotations

from pathlib import Path

import pytest
from _drawings import doodle
from _ingest import params, write_png

from minisd.ingest import run_ingest
from minisd.ingest.raw import check_declared, declared_deps, resolve
from minisd.stage import StageError

DVC_YAML = """stages:
  ingest:
    cmd: python stages/ingest.py
    deps:
      - stages/ingest.py
      - data/raw
      - /mnt/extra/scans
"""


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A folder with a dvc.yaml whose ingest stage depends on data/raw and one absolute path; cwd there."""
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def folder_of_drawings(root: Path, n: int = 2) -> Path:
    for i in range(n):
        write_png(root / f"d{i}.png", doodle(i))
        (root / f"d{i}.txt").write_text(f"doodle {i}")
    return root


def test_relative_paths_are_read_under_data_raw_and_absolute_ones_as_given():
    assert resolve("quickdraw") == Path("data/raw/quickdraw")
    assert resolve("a/b.ndjson", "elsewhere") == Path("elsewhere/a/b.ndjson")
    assert resolve("/abs/folder") == Path("/abs/folder")


def test_declared_deps_are_absolute_and_absent_without_dvc_yaml(project, tmp_path):
    deps = declared_deps()
    assert project / "data/raw" in deps and Path("/mnt/extra/scans") in deps
    assert declared_deps(tmp_path / "nope.yaml") is None


def test_sources_inside_a_dep_pass(project):
    check_declared(params([{"kind": "synthetic", "count": 1}, {"kind": "imagefolder", "path": "mine"},
                           {"kind": "quickdraw", "path": str(project / "data/raw/qd/cat.ndjson")},
                           {"kind": "imagefolder", "path": "/mnt/extra/scans/2024"}]))  # fmt: skip


def test_a_source_outside_every_dep_fails_naming_path_and_fix(project):
    with pytest.raises(StageError) as info:
        check_declared(params([{"kind": "synthetic", "count": 1}, {"kind": "imagefolder", "path": "/home/me/pics"}]))
    message = str(info.value)
    assert message.startswith("ingest.sources[1].path: /home/me/pics")
    assert "mv /home/me/pics data/raw/pics" in message and "ingest.sources[1].path: pics" in message
    with pytest.raises(StageError, match=r"sources\[0\].path: \.\./outside"):  # relative, but climbing out
        check_declared(params([{"kind": "imagefolder", "path": "../outside"}]))


def test_without_dvc_yaml_nothing_is_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_declared(params([{"kind": "imagefolder", "path": "/anywhere"}]))


def test_run_ingest_reads_relative_paths_under_raw_dir(tmp_path):
    raw = tmp_path / "raw"
    folder_of_drawings(raw / "doodles")
    report = run_ingest(params([{"kind": "imagefolder", "path": "doodles"}]), tmp_path / "s", tmp_path / "o", raw)
    assert report["sources"]["doodles"]["accepted"] == 2


def test_missing_relative_path_says_where_it_looked(tmp_path):
    out, shards = tmp_path / "o", tmp_path / "s"
    with pytest.raises(StageError, match=r"path: pics \(.*raw/pics\) does not exist \(relative source paths are read"):
        run_ingest(params([{"kind": "imagefolder", "path": "pics"}]), shards, out, tmp_path / "raw")
    with pytest.raises(StageError, match=r"write 'pics', not 'data/raw/pics'"):
        run_ingest(params([{"kind": "imagefolder", "path": "data/raw/pics"}]), shards, out, "data/raw")
