"""The eval prompts: chosen by `embed_text` (which embeds them into the text cache and writes them
beside it as prompts.json), loaded by `evaluate`, which samples and scores them.

A prompt is {"text", "class", "attributes": {"size", "position"}, "key"}. They are drawn from
held-out (val) captions so each carries labels evaluation can score: per class, `per_class`
captions from distinct val samples, chosen greedily so the whole set covers as many size/position
words as possible (a prompt set of only "a large X in the center" would not test adherence). A
caption's size/position label is kept only when the caption actually says it; a label the prompt
never asked for cannot be scored. Free-text `extra` prompts (params `prompts.extra`) carry no labels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from pathlib import Path

from minisd.shards import Sample
from minisd.stage import StageError

log = logging.getLogger("minisd.eval_prompts")


def _mentions(text: str, phrase: str | None) -> bool:
    return bool(phrase) and re.search(rf"\b{re.escape(phrase)}\b", text, re.IGNORECASE) is not None


def _labelled(sample: Sample, caption: str) -> dict:
    size, position = sample.attributes.get("size"), sample.attributes.get("position")
    return {
        "text": caption,
        "class": sample.label,
        "attributes": {
            "size": size if _mentions(caption, size) else None,
            "position": position if _mentions(caption, position) else None,
        },
        "key": sample.key,
    }


def _named(prompt: dict) -> int:
    return sum(v is not None for v in prompt["attributes"].values())


def _best_caption(sample: Sample) -> dict | None:
    """The caption naming the most of the sample's attributes (ties: the shortest, then alphabetical)."""
    options = [_labelled(sample, c) for c in dict.fromkeys(sample.captions) if c.strip()]
    if not options:
        return None
    return min(options, key=lambda p: (-_named(p), len(p["text"]), p["text"]))


def _stable_order(key: str) -> bytes:
    """A fixed pseudo-random order: spreads picks over the val set instead of taking the first shard."""
    return hashlib.sha256(key.encode()).digest()


def _pick(candidates: list[dict], count: int, sizes: Counter, positions: Counter) -> list[dict]:
    """Greedy: each pick is the candidate whose size and position words are least used so far.
    The counters are shared across classes, so even one prompt per class spreads over the grid."""
    chosen: list[dict] = []
    texts: set[str] = set()
    pool = list(candidates)
    while pool and len(chosen) < count:

        def cost(p: dict) -> tuple:  # new text, then scorable (labelled), then least-used words
            a = p["attributes"]
            return p["text"] in texts, -_named(p), sizes[a["size"]] + positions[a["position"]]

        best = min(range(len(pool)), key=lambda i: cost(pool[i]))  # first minimum: keeps the stable order
        pick = pool.pop(best)
        chosen.append(pick)
        texts.add(pick["text"])
        sizes[pick["attributes"]["size"]] += 1
        positions[pick["attributes"]["position"]] += 1
    return chosen


def choose_prompts(val: list[Sample], per_class: int, extra: list[str]) -> list[dict]:
    """Labelled prompts per class (classes sorted), then the extra prompts; deterministic.

    Without any class labels (e.g. an image-folder source with no label column) the val captions
    form one unlabelled group, so evaluation still has prompts for its grid.
    """
    groups: dict[str | None, list[dict]] = {}
    for sample in sorted(val, key=lambda s: _stable_order(s.key)):
        prompt = _best_caption(sample)
        if prompt is not None:
            groups.setdefault(sample.label, []).append(prompt)
    if any(label is not None for label in groups):
        unlabelled = len(groups.pop(None, []))
        if unlabelled:
            log.info("prompts: %d val samples without a class are not used for labelled prompts", unlabelled)
    prompts: list[dict] = []
    sizes, positions = Counter(), Counter()
    for label in sorted(groups, key=lambda c: (c is None, c or "")):
        picked = _pick(groups[label], per_class, sizes, positions)
        if len(picked) < per_class:
            log.warning(
                "prompts: class %r has only %d usable val samples (per_class = %d)", label, len(picked), per_class
            )
        prompts.extend(picked)
    for text in extra:
        prompts.append({"text": text, "class": None, "attributes": {"size": None, "position": None}, "key": None})
    return prompts


def load_prompts(path: str | Path) -> list[dict]:
    """prompts.json as `choose_prompts` wrote it, checked; a missing class or attribute reads as None."""
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
