"""End to end with the real `dvc` CLI on the tiny profile, in a throwaway git repo made from the project.

One module-scoped repo runs the whole DAG once; the tests then check what users do with it:
push and pull through a local remote, experiments (run and queued), and that a param change
reaches only the stages it touches (asked of `dvc repro --dry`, nothing retrained for it).
Nothing here touches the developer's own workspace.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import cv2
import pytest
import yaml
from _dvc_repo import ALL_STAGES, commit, edit_params, make_repo, sh, stages_run

pytestmark = pytest.mark.e2e

OUTPUTS = [
    "data/shards", "data/ingest", "data/cache/text", "data/cache/latents",
    "models/tokenizer", "models/text_encoder", "models/clip", "models/vae", "models/unet", "models/scheduler",
    "models/judge", "models/pipeline",
    "results/clip", "results/vae", "results/unet", "results/judge", "results/eval",
]  # fmt: skip


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.md5(path.read_bytes()).hexdigest()
        for out in OUTPUTS
        for path in sorted((root / out).rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """The project at its current state, tiny profile applied, `dvc repro` run and committed."""
    path = make_repo(tmp_path_factory.mktemp("e2e") / "project", "tiny")
    commit(path, "project on the tiny profile")
    log = sh("dvc", "repro", cwd=path)
    assert stages_run(log) == ALL_STAGES, log
    commit(path, "tiny run")
    return path


def test_full_repro_writes_every_output(repo):
    for out in OUTPUTS:
        assert (repo / out).exists(), out
    report = json.loads((repo / "data/ingest/report.json").read_text())
    assert report["total"]["accepted"] > 0
    metrics = json.loads((repo / "results/eval/metrics.json").read_text())
    assert "judge_accuracy" in metrics
    grid = cv2.imread(str(repo / "results/eval/grid.png"))
    assert grid is not None and grid.shape[0] > 0
    assert "up to date" in sh("dvc", "status", cwd=repo)


def test_noop_repro_runs_nothing(repo):
    log = sh("dvc", "repro", cwd=repo)  # how fast: benchmarks/bench_dvc.py
    assert stages_run(log) == set(), log


def test_remote_round_trip_to_a_fresh_clone(repo, tmp_path):
    remote = tmp_path / "remote"
    sh("dvc", "remote", "add", "-d", "-f", "storage", str(remote), cwd=repo)
    sh("git", "commit", "-qam", "add local remote", cwd=repo)
    sh("dvc", "push", "--run-cache", cwd=repo)
    expected = tree_digest(repo)

    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path)
    sh("dvc", "pull", cwd=clone)
    assert tree_digest(clone) == expected
    assert stages_run(sh("dvc", "repro", cwd=clone)) == set()
    assert "up to date" in sh("dvc", "status", cwd=clone)

    out = clone / "sample.png"
    sh(sys.executable, "-m", "minisd", "generate", "a small star in the top left",
       "-n", "1", "--steps", "2", "--seed", "0", "-o", str(out), cwd=clone)  # fmt: skip
    image = cv2.imread(str(out))
    assert image is not None and image.shape[:2] == (128, 128)

    fresh = tmp_path / "fresh"
    sh("git", "clone", "-q", str(repo), str(fresh), cwd=tmp_path)
    log = sh("dvc", "repro", "--pull", cwd=fresh)
    assert stages_run(log) == set(), log
    assert tree_digest(fresh) == expected


def params(repo: Path) -> dict:
    return yaml.safe_load((repo / "params.yaml").read_text())


def test_queued_unet_experiment_reruns_only_unet_and_evaluate_and_shows(repo):
    """What users do to compare runs: queue an experiment, run the queue, read `dvc exp show`.
    `--run-all` starts the queue's worker and follows the task's log until it ends, in one process
    (polling `dvc queue status` instead cost a dvc start-up a second)."""
    assert params(repo)["unet"]["lr"] != 0.0015
    sh("dvc", "exp", "run", "--queue", "-S", "unet.lr=0.0015", cwd=repo)
    log = sh("dvc", "exp", "run", "--run-all", cwd=repo)
    assert stages_run(log) == {"train_unet", "evaluate"}, log
    status = sh("dvc", "queue", "status", cwd=repo)
    assert "Success" in status and "Failed" not in status, status
    shown = json.dumps(json.loads(sh("dvc", "exp", "show", "--json", cwd=repo)))
    assert '"lr": 0.0015' in shown and "judge_accuracy" in shown


def reached_by(repo: Path, edit) -> set[str]:
    """The stages a params edit reaches: itself changed, or downstream of a changed stage
    (`dvc repro --dry --force-downstream`: nothing trains, so no experiment is needed to know)."""
    edit_params(repo, edit)
    try:
        return stages_run(sh("dvc", "repro", "--dry", "--force-downstream", cwd=repo))
    finally:
        sh("git", "checkout", "--", "params.yaml", cwd=repo)


def test_vae_param_leaves_text_and_judge_alone(repo):
    reached = reached_by(repo, lambda p: p["vae"].update(lr=0.0015))
    assert reached == {"train_vae", "encode_latents", "train_unet", "evaluate"}, reached


def test_ingest_param_reaches_everything(repo):
    assert reached_by(repo, lambda p: p["ingest"].update(val_fraction=0.2)) == ALL_STAGES
    assert stages_run(sh("dvc", "repro", "--dry", cwd=repo)) == set()  # the edit is gone, the lock untouched
