"""The committed dvc.lock agrees with the code and params it sits beside: on a fresh checkout
`dvc status` may only miss data and outputs (not pulled), never report a changed code or params
dep. So a teammate who clones and `dvc pull`s is not told everything is stale."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_fresh_checkout_has_no_changed_code_or_params_deps(tmp_path):
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file() and not name.startswith((".checkpoints/", "dvc_plots/")):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp_path / name)  # no __pycache__, no outputs: what a clone has
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)  # DVC needs the repo it lives in
    dvc = str(Path(sys.executable).parent / "dvc")
    out = subprocess.run([dvc, "status", "--json"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    stale = []
    for stage, changes in json.loads(out).items():
        for change in changes if isinstance(changes, list) else []:
            for path, state in change.get("changed deps", {}).items():
                if state != "deleted":  # a missing data/model dep is expected before `dvc pull`
                    stale.append(f"{stage}: {path} {state}")
    assert not stale, "dvc.lock is stale for a fresh checkout (rerun `dvc repro`, then commit dvc.lock):\n" + \
        "\n".join(stale)
