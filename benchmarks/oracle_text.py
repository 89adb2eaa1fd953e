"""An oracle text cache: every caption's states plus one fixed random vector per class, size and
position word it names, added at every token.

That is what a text encoder carrying exactly the words' meaning, loud and the same in every
template, would hand the UNet. Trained and scored at the default's UNet steps it bounds what any
better text encoder can buy there (issue 11's probe, rerunnable):

    python benchmarks/oracle_text.py --out /tmp/oracle_text            # from data/cache/text
    python benchmarks/sweep_unet.py --recipe oracle --steps 750 --text-cache /tmp/oracle_text --prompt-states

`--prompt-states` makes the sweep sample from the cache's eval-prompt rows (the oracle has no text
encoder a pipeline could run). `--strength` scales the vectors against the states' own spread
(per-dimension standard deviation over all captions and tokens).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from minisd import paths
from minisd.caches.text_cache import EMBEDDINGS, INDEX, PROMPTS, TextCache
from minisd.shards import iter_samples

ATTRIBUTES = ("class", "size", "position")


def caption_words(shards: Path, prompts: list[dict]) -> dict[str, dict[str, str]]:
    """caption -> {attribute: word} for each attribute of its sample that the caption names."""
    named: dict[str, dict[str, str]] = {}

    def note(text: str, values: dict) -> None:
        found = {a: v for a, v in values.items() if v and re.search(rf"\b{re.escape(v)}\b", text)}
        named.setdefault(text, {}).update(found)

    for split in ("train", "val"):
        for s in iter_samples(shards, split, images=False):
            values = {"class": s.label, **{a: s.attributes.get(a) for a in ATTRIBUTES[1:]}}
            for caption in s.captions:
                note(caption, values)
    for p in prompts:
        note(p["text"], {"class": p.get("class"), **(p.get("attributes") or {})})
    return named


def oracle_states(cache: TextCache, named: dict[str, dict[str, str]], strength: float, seed: int) -> tuple[torch.Tensor, dict]:
    states = cache.embeddings.float().clone()
    spread = states[[r for r in range(len(cache)) if r != cache.empty_row]].std(dim=(0, 1))  # (hidden,)
    generator = torch.Generator().manual_seed(seed)
    vectors: dict[tuple[str, str], torch.Tensor] = {}
    counts = {a: 0 for a in ATTRIBUTES}
    for row, caption in enumerate(cache.captions):
        for attribute, word in sorted(named.get(caption, {}).items()):
            if (attribute, word) not in vectors:
                vectors[attribute, word] = torch.randn(cache.hidden_size, generator=generator) * spread * strength
            states[row] += vectors[attribute, word]  # every token, padding included
            counts[attribute] += 1
    return states, {"captions": len(cache), "with_word": counts, "vectors": len(vectors),
                    "state_spread": round(float(spread.mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=paths.TEXT_CACHE)
    parser.add_argument("--shards", type=Path, default=paths.SHARDS)
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cache = TextCache.open(args.cache)
    states, summary = oracle_states(cache, caption_words(args.shards, cache.prompts), args.strength, args.seed)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    save_file({"embeddings": states.to(cache.embeddings.dtype).contiguous()}, args.out / EMBEDDINGS)
    for name in (INDEX, PROMPTS):
        shutil.copy(args.cache / name, args.out / name)
    print(json.dumps({**summary, "strength": args.strength, "out": str(args.out)}))


if __name__ == "__main__":
    main()
