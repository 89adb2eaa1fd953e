"""data/raw/ with the real `dvc` CLI: adding, changing or deleting a file under a source makes
`dvc status` report `ingest` and `dvc repro` rerun it, with no edit to dvc.yaml; a source outside
every dependency of `ingest` fails the stage naming the path and the fix. Ingest only: seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _dvc_repo import commit, edit_params, make_repo, run, sh, stages_run, status
from _drawings import doodle
from _ingest import write_png

pytestmark = pytest.mark.e2e


def sources(*extra: dict) -> callable:
    def edit(raw: dict) -> None:
        raw["ingest"].update(workers=0, sources=[{"kind": "synthetic", "name": None, "count": 24, "seed": 0}, *extra])

    return edit


def seen(repo: Path, name: str) -> int:
    return json.loads((repo / "data/ingest/report.json").read_text())["sources"][name]["seen"]


def add_drawing(folder: Path, i: int, seed: int | None = None) -> None:
    write_png(folder / f"d{i}.png", doodle(i if seed is None else seed))
    (folder / f"d{i}.txt").write_text(f"doodle {i}")


def assert_ingest_stale_then_rerun(repo: Path) -> None:
    changed = status(repo, "ingest")
    assert "ingest" in changed, changed
    assert {"data/raw": "modified"} in [c.get("changed deps") for c in changed["ingest"]], changed
    assert stages_run(sh("dvc", "repro", "ingest", cwd=repo)) == {"ingest"}
    assert status(repo, "ingest") == {}


def test_files_under_a_source_rerun_ingest(tmp_path):
    repo = make_repo(tmp_path / "project", "tiny")
    edit_params(repo, sources())
    commit(repo, "synthetic only")
    # the default case: data/raw holds only its README (dvc-ignored), and the dep still exists
    assert stages_run(sh("dvc", "repro", "ingest", cwd=repo)) == {"ingest"}
    assert status(repo, "ingest") == {}

    doodles = repo / "data/raw/doodles"
    for i in range(3):
        add_drawing(doodles, i)
    edit_params(repo, sources({"kind": "imagefolder", "name": None, "path": "doodles"}))  # relative to data/raw
    assert stages_run(sh("dvc", "repro", "ingest", cwd=repo)) == {"ingest"}
    assert seen(repo, "doodles") == 3
    commit(repo, "doodles in git")

    add_drawing(doodles, 3)  # add
    assert_ingest_stale_then_rerun(repo)
    assert seen(repo, "doodles") == 4

    add_drawing(doodles, 0, seed=99)  # change
    assert_ingest_stale_then_rerun(repo)

    for suffix in (".png", ".txt"):  # delete
        (doodles / f"d1{suffix}").unlink()
    assert_ingest_stale_then_rerun(repo)
    assert seen(repo, "doodles") == 3
    commit(repo, "edits")

    # the same with the folder tracked by DVC instead of git (README: dvc add data/raw/<folder>)
    sh("git", "rm", "-r", "-q", "--cached", "data/raw/doodles", cwd=repo)
    sh("dvc", "add", "data/raw/doodles", cwd=repo)
    sh("dvc", "repro", "ingest", cwd=repo)
    commit(repo, "doodles in dvc")
    add_drawing(doodles, 5)
    assert_ingest_stale_then_rerun(repo)
    assert seen(repo, "doodles") == 4


def test_a_source_outside_every_dep_fails_naming_the_fix(tmp_path):
    repo = make_repo(tmp_path / "project", "tiny")
    outside = tmp_path / "elsewhere"
    add_drawing(outside, 0)
    edit_params(repo, sources({"kind": "imagefolder", "name": None, "path": str(outside)}))
    commit(repo, "a source outside data/raw")
    result = run(repo, "dvc", "repro", "ingest")
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert f"ingest.sources[1].path: {outside}" in message, message
    assert f"mv {outside} data/raw/elsewhere" in message, message
    assert not (repo / "data/shards").exists()
