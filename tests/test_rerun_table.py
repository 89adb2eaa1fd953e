"""Which stages an edit reruns: the module boundaries follow the stages, so editing one model's code
reruns only the stage that trains it (and, through its output, what is downstream). Stated as a
table and checked with the real `dvc status` on a copy of the project with its lock, so it cannot
drift when an import moves."""

from __future__ import annotations

import json

import pytest
from _dvc_repo import copy_project, run

RERUNS = {
    "src/minisd/ingest/synthetic.py": {"ingest"},
    "src/minisd/text_encoder.py": {"train_clip"},
    "src/minisd/vae/model.py": {"train_vae"},
    "src/minisd/unet/model.py": {"train_unet"},
    "src/minisd/judge/model.py": {"train_judge", "evaluate"},  # evaluate loads the judge it scores with
    "src/minisd/clip/data.py": {"train_clip", "train_unet", "evaluate"},  # the CLIP's input: trained, REPA targets, scores
    "src/minisd/judge/train.py": {"train_judge"},
    "src/minisd/training/loop.py": {"train_clip", "train_vae", "train_unet", "train_judge"},  # every trainer
    "src/minisd/training/attention.py": {"train_clip", "train_unet"},  # the trainers with attention to switch
    "src/minisd/evaluate/sheets.py": {"evaluate"},
    "src/minisd/captions.py": {"ingest", "evaluate"},  # the captions' templates, and the sheets' prompts
    # params: one module per section, so a section's code reruns the stage that reads it (and evaluate, whose
    # model card reads every section); the shared base reruns every stage
    "src/minisd/params/unet.py": {"train_unet", "evaluate"},
    "src/minisd/params/vae.py": {"train_vae", "evaluate"},
    "src/minisd/params/caches.py": {"embed_text", "encode_latents", "evaluate"},
    "src/minisd/params/base.py": {"ingest", "train_clip", "embed_text", "train_vae", "encode_latents", "train_judge",
                                  "train_unet", "evaluate"},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("rerun"), with_lock=True)


def stages_with_changed_code(repo) -> set[str]:
    result = run(repo, "dvc", "status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    changed = set()
    for stage, changes in json.loads(result.stdout).items():
        for change in changes if isinstance(changes, list) else []:
            if any(state == "modified" for state in change.get("changed deps", {}).values()):
                changed.add(stage.split(":")[-1])
    return changed


@pytest.mark.parametrize("module", RERUNS)
def test_an_edit_reruns_only_its_stages(project, module):
    path = project / module
    original = path.read_text()
    path.write_text(original + "\n# an edit\n")
    try:
        assert stages_with_changed_code(project) == RERUNS[module]
    finally:
        path.write_text(original)
