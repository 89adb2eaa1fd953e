"""Training batches straight from cached tensors: no VAE, no text encoder, no DataLoader.

Everything random about a batch (which samples, which caption, caption dropout, the latent
drawn from the VAE posterior) comes from generators seeded by (seed, micro-batch index, rank),
never from global RNG state. So the data stream is a pure function of its position: a resumed
run continues it exactly, and each process of a multi-process run reads a disjoint slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from minisd.stage import StageError
from minisd.training.rng import DataOrder, seeded_generator  # noqa: F401  (re-exported: the stream's parts)


@dataclass
class CaptionedLatents:
    """One split: VAE posterior mean/std per sample, and the caption-embedding rows of each sample.

    mean, std: (N, C, h, w), already multiplied by the VAE scaling factor.
    caption_rows: for each sample, the rows of `embeddings` holding its captions (at least one).
    embeddings: (M, tokens, hidden) caption embeddings; `empty_row` is the "" prompt.
    """

    mean: torch.Tensor
    std: torch.Tensor
    caption_rows: list[list[int]]
    embeddings: torch.Tensor
    empty_row: int
    keys: list[str] | None = None

    def __post_init__(self):
        n = len(self.mean)
        if self.std.shape != self.mean.shape:
            raise StageError(f"latent std {tuple(self.std.shape)} does not match mean {tuple(self.mean.shape)}")
        if len(self.caption_rows) != n or (self.keys is not None and len(self.keys) != n):
            raise StageError(f"{n} latents but {len(self.caption_rows)} caption lists")
        if n == 0:
            raise StageError("no training samples")
        m = len(self.embeddings)
        for i, rows in enumerate(self.caption_rows):
            if not rows or min(rows) < 0 or max(rows) >= m:
                name = self.keys[i] if self.keys else f"#{i}"
                raise StageError(f"sample {name}: caption rows {rows} invalid for {m} cached embeddings")
        if not 0 <= self.empty_row < m:
            raise StageError(f"empty prompt row {self.empty_row} outside the {m} cached embeddings")
        counts = torch.tensor([len(r) for r in self.caption_rows])
        self._offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        self._rows = torch.tensor([r for rows in self.caption_rows for r in rows], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.mean)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self.mean.shape[1:])

    def pick_rows(self, indices: torch.Tensor, generator: torch.Generator, caption_dropout: float) -> torch.Tensor:
        """One random caption per sample, replaced by the empty prompt with probability `caption_dropout`."""
        start, count = self._offsets[indices], self._offsets[indices + 1] - self._offsets[indices]
        pick = (torch.rand(len(indices), generator=generator) * count).long().clamp_max(count - 1)
        rows = self._rows[start + pick]
        drop = torch.rand(len(indices), generator=generator) < caption_dropout
        return torch.where(drop, torch.full_like(rows, self.empty_row), rows)

    def batch(self, indices: torch.Tensor, generator: torch.Generator, caption_dropout: float):
        """(latents sampled from N(mean, std), caption embeddings, chosen rows), all float32 on CPU."""
        rows = self.pick_rows(indices, generator, caption_dropout)
        mean, std = self.mean[indices].float(), self.std[indices].float()
        latents = mean + std * torch.randn(mean.shape, generator=generator)
        return latents, self.embeddings[rows].float(), rows
