"""Eval prompts as the cache helper writes them: [{"text", "class", "attributes": {"size", "position"}}]."""

from __future__ import annotations

import json
from pathlib import Path

from minisd.stage import StageError


def load_prompts(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise StageError(f"no eval prompts at {path} (run `dvc repro embed_text`)")
    prompts = json.loads(path.read_text())
    if not isinstance(prompts, list) or not prompts:
        raise StageError(f"{path}: expected a non-empty list of prompts")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, dict) or not isinstance(prompt.get("text"), str):
            raise StageError(f"{path}: prompt {i} needs a 'text' string (got {prompt!r})")
        attributes = prompt.get("attributes") or {}
        prompt["class"] = prompt.get("class")
        prompt["attributes"] = {"size": attributes.get("size"), "position": attributes.get("position")}
    return prompts
