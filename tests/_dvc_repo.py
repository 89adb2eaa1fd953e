"""Throwaway git + DVC copies of the project for end-to-end tests (the real `dvc` CLI, never the workspace)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from minisd import project_copy

ROOT = Path(__file__).resolve().parents[1]
ALL_STAGES = {"ingest", "train_clip", "embed_text", "train_vae", "encode_latents", "train_judge", "train_unet", "evaluate"}


def env() -> dict:
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",  # proves the default needs no hub
        "OMP_NUM_THREADS": "1",  # the other xdist worker has the second core (conftest.py: 2 threads spin)
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@example.com",
        "GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@example.com",
    }  # fmt: skip


def sh(*cmd: str, cwd: Path) -> str:
    """A command that must succeed: its stdout + stderr, or an AssertionError that shows both."""
    result = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}) in {cwd}\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def run(repo: Path, *cmd: str) -> subprocess.CompletedProcess:
    """A command that may fail: the caller checks returncode and output."""
    return subprocess.run(cmd, cwd=repo, env=env(), capture_output=True, text=True)


def stages_run(log: str) -> set[str]:
    return set(re.findall(r"Running stage '([\w-]+)'", log))


def copy_project(path: Path, with_lock: bool = False) -> Path:
    """The project's files, as a clone has them, in `path`, git-initialised (DVC needs the repo it lives in)."""
    project_copy.copy_project(ROOT, path, with_lock)
    sh("git", "init", "-q", "-b", "main", cwd=path)
    return path


def make_repo(path: Path, *profiles: str) -> Path:
    """`copy_project` with `profiles` applied in order."""
    copy_project(path)
    for profile in profiles:
        sh(sys.executable, "-m", "minisd", "profile", profile, cwd=path)
    return path


def edit_params(repo: Path, edit) -> None:
    """Change params.yaml in place through `edit(raw_dict)` (comments are lost: a throwaway repo)."""
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    edit(raw)
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def commit(repo: Path, message: str) -> None:
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-qm", message, "--allow-empty", cwd=repo)


def status(repo: Path, *targets: str) -> dict:
    """`dvc status --json` of the targets: {} when up to date, else {stage: [changes]}."""
    result = run(repo, "dvc", "status", "--json", *targets)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)
