"""A throwaway copy of the project as a clone has it, for the end-to-end tests and the GPU check.

Not a stage's code: it copies files so the real `git`/`dvc` CLIs can run somewhere other than
the workspace, never touching its outputs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

GENERATED = ("data/", "models/", "results/", ".checkpoints/", "dvc.lock", "dvc_plots/")  # the pipeline's outputs
INPUTS = ("data/raw/",)  # under data/ but the pipeline's input (ingest depends on it), not an output


def project_files(root: Path, with_lock: bool = False) -> list[str]:
    """What git would ship (tracked and untracked-but-not-ignored) minus pipeline outputs; dvc.lock
    only when asked (a new repo's first `dvc repro` writes its own)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    kept = INPUTS + (("dvc.lock",) if with_lock else ())
    return [f for f in listed if (f.startswith(kept) or not f.startswith(GENERATED)) and (root / f).is_file()]


def copy_project(root: Path, dest: Path, with_lock: bool = False) -> Path:
    """`project_files` of `root` copied into `dest` (not git-initialised: callers do it in their environment)."""
    for name in project_files(root, with_lock):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest / name)
    return dest
