"""How much of the caption meaning a frozen text encoder hands the UNet, before spending UNet minutes.

For every distinct train caption with class/size/position labels it computes the per-token
states the UNet's cross-attention reads (last hidden state, all positions, as the pipeline
encodes a prompt) and prints per attribute:
  R2     share of the states' variance explained by the attribute (mean over tokens and dims):
         how loud the word is at every position, which is what a fresh cross-attention hears;
  probe  held-out accuracy of a linear probe on the mean-pooled state (half the templates train
         it, the other half test it): whether the word is recoverable at all.

    python benchmarks/probe_text.py models/text_encoder --random   # trained vs random init of that shape
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch
from transformers import CLIPTextModel, CLIPTokenizer

from minisd import paths
from minisd.shards import iter_samples


def labelled_captions(shards: Path) -> list[tuple[str, dict]]:
    seen = {}
    for s in iter_samples(shards, "train", images=False):
        for c in s.captions:
            attrs = {"class": s.label, **{k: s.attributes.get(k) for k in ("size", "position")}}
            if all(attrs.values()) and all(re.search(rf"\b{v}\b", c) for v in attrs.values()):
                seen[c] = attrs
    return sorted(seen.items())


@torch.inference_mode()
def states(encoder, tokenizer, texts: list[str]) -> torch.Tensor:
    ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    return torch.cat([encoder(ids[i:i + 256])[0] for i in range(0, len(ids), 256)]).float()


def explained(x: torch.Tensor, groups: list[str]) -> float:
    """Between-group share of the variance of x (N, ...), pooled over every other axis."""
    x = x.reshape(len(x), -1)
    centred = x - x.mean(0)
    means = torch.zeros_like(x)
    for g in set(groups):
        rows = torch.tensor([i for i, v in enumerate(groups) if v == g])
        means[rows] = x[rows].mean(0)
    return float((means - x.mean(0)).pow(2).sum() / centred.pow(2).sum())


def probe(x: torch.Tensor, groups: list[str], train_mask: torch.Tensor) -> float:
    """Ridge one-vs-rest on standardized mean-pooled states; accuracy on the held-out captions."""
    names = sorted(set(groups))
    y = torch.tensor([names.index(g) for g in groups])
    x = (x - x[train_mask].mean(0)) / (x[train_mask].std(0) + 1e-6)
    x = torch.cat([x, torch.ones(len(x), 1)], 1)
    targets = torch.nn.functional.one_hot(y, len(names)).float()
    a = x[train_mask]
    w = torch.linalg.solve(a.T @ a + 1.0 * torch.eye(a.shape[1]), a.T @ targets[train_mask])
    return float(((x[~train_mask] @ w).argmax(1) == y[~train_mask]).float().mean())


def template_of(text: str, attrs: dict) -> str:
    for value in attrs.values():
        text = re.sub(rf"\b{re.escape(value)}\b", "#", text)
    return text


def report(name: str, encoder, tokenizer, captions) -> str:
    texts = [c for c, _ in captions]
    h = states(encoder, tokenizer, texts)
    templates = sorted({template_of(c, a) for c, a in captions})
    held_out = set(templates[1::2])
    train_mask = torch.tensor([template_of(c, a) not in held_out for c, a in captions])
    cells = []
    for attr in ("class", "size", "position"):
        groups = [a[attr] for _, a in captions]
        cells += [f"{explained(h, groups):.3f}", f"{probe(h.mean(1), groups, train_mask):.2f}"]
    cells.append(f"{explained(h, [template_of(c, a) for c, a in captions]):.3f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("encoders", nargs="*", type=Path, default=[paths.TEXT_ENCODER])
    parser.add_argument("--tokenizer", type=Path, default=paths.TOKENIZER)
    parser.add_argument("--random", action="store_true", help="also a random init of the first encoder's shape")
    parser.add_argument("--shards", type=Path, default=paths.SHARDS)
    args = parser.parse_args()
    tokenizer = CLIPTokenizer.from_pretrained(args.tokenizer)
    captions = labelled_captions(args.shards)
    print(f"{len(captions)} labelled captions, {tokenizer.model_max_length} tokens")
    print("| encoder | class R2 | class probe | size R2 | size probe | position R2 | position probe | template R2 |")
    print("|---|---|---|---|---|---|---|---|")
    for folder in args.encoders:
        encoder = CLIPTextModel.from_pretrained(folder).eval()
        print(report(str(folder), encoder, tokenizer, captions), flush=True)
    if args.random:
        torch.manual_seed(0)
        encoder = CLIPTextModel(CLIPTextModel.from_pretrained(args.encoders[0]).config).eval()
        print(report("random init (same shape)", encoder, tokenizer, captions), flush=True)


if __name__ == "__main__":
    main()
