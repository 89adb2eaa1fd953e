"""Throwaway git + DVC copies of the project for end-to-end tests (the real `dvc` CLI, never the workspace)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from test_e2e_dvc import ROOT, env, project_files, sh


def make_repo(path: Path, *profiles: str) -> Path:
    """The project's files (as a clone has them) in `path`, git-initialised, with `profiles` applied in order."""
    for name in project_files():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, path / name)
    sh("git", "init", "-q", "-b", "main", cwd=path)
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


def run(repo: Path, *cmd: str) -> subprocess.CompletedProcess:
    """A command that may fail: the caller checks returncode and output."""
    return subprocess.run(cmd, cwd=repo, env=env(), capture_output=True, text=True)
