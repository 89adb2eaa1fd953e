"""The committed dvc.lock agrees with the code and params it sits beside: on a fresh checkout
`dvc status` may only miss data and outputs (not pulled), never report a changed code or params
dep. So a teammate who clones and `dvc pull`s is not told everything is stale."""

from __future__ import annotations

import json

from _dvc_repo import copy_project, run


def test_fresh_checkout_has_no_changed_code_or_params_deps(tmp_path):
    result = run(copy_project(tmp_path, with_lock=True), "dvc", "status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    stale = []
    for stage, changes in json.loads(result.stdout).items():
        for change in changes if isinstance(changes, list) else []:
            for path, state in change.get("changed deps", {}).items():
                if state != "deleted":  # a missing data/model dep is expected before `dvc pull`
                    stale.append(f"{stage}: {path} {state}")
    assert not stale, "dvc.lock is stale for a fresh checkout (rerun `dvc repro`, then commit dvc.lock):\n" + \
        "\n".join(stale)
