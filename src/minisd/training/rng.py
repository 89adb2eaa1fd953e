"""Randomness that resumes exactly: seeded per-step generators, a seeded data order, RNG snapshots.

Trainers draw every batch from `seeded_generator(seed, step, rank)` and `DataOrder`, so the data
stream is a pure function of its position; `capture`/`restore` snapshot the global RNGs
(Python, numpy, torch CPU + CUDA) as JSON + uint8 tensors for whatever else draws from them.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def capture() -> tuple[dict, dict[str, torch.Tensor]]:
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {
        "python": [version, list(state), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
    }
    tensors = {"torch_cpu": torch.get_rng_state()}
    for i in range(meta["cuda_devices"]):
        tensors[f"torch_cuda_{i}"] = torch.cuda.get_rng_state(i)
    return meta, tensors


def restore(meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    version, state, gauss = meta["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        for i in range(min(meta["cuda_devices"], torch.cuda.device_count())):
            torch.cuda.set_rng_state(tensors[f"torch_cuda_{i}"], i)


def seeded_generator(*parts: int) -> torch.Generator:
    """A CPU generator whose seed mixes `parts` well (SeedSequence), so nearby ids don't correlate."""
    words = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(words[0]) << 32 | int(words[1]))


class GeneratorState:
    """A numpy Generator as a checkpointable object: its bit generator's state is plain JSON."""

    def __init__(self, generator: np.random.Generator):
        self.generator = generator

    def state_dict(self) -> dict:
        return self.generator.bit_generator.state

    def load_state_dict(self, state: dict) -> None:
        self.generator.bit_generator.state = state


class DataOrder:
    """A seeded, endless stream of sample indices: epoch e is a fixed permutation of 0..N-1.

    Micro-batch m of a run with `world` processes covers global positions
    [m * B * world, (m + 1) * B * world); process r takes its r-th slice of B. Epochs run into
    each other (no dropped tail), so the position is just m and resuming at m replays nothing.
    """

    def __init__(self, size: int, batch_size: int, seed: int, world: int = 1, rank: int = 0):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside world size {world}")
        self.size, self.batch_size, self.seed, self.world, self.rank = size, batch_size, seed, world, rank
        self._epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, torch.randperm(self.size, generator=seeded_generator(self.seed, epoch))
        return self._perm

    def indices(self, micro_step: int) -> torch.Tensor:
        start = (micro_step * self.world + self.rank) * self.batch_size
        positions = torch.arange(start, start + self.batch_size)
        out = torch.empty(self.batch_size, dtype=torch.long)
        for epoch in positions.div(self.size, rounding_mode="floor").unique().tolist():
            mask = positions // self.size == epoch
            out[mask] = self._permutation(epoch)[positions[mask] % self.size]
        return out

    def epoch_of(self, micro_step: int) -> float:
        return micro_step * self.world * self.batch_size / self.size
