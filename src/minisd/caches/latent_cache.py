"""Reader of `data/cache/latents/`: every sample's latent distribution, keyed by sample key.

Layout (written by `minisd.caches.encode`):
  {split}-{shard}-{chunk}.safetensors  "mean" and "std" (n, C, h, w), already * scaling_factor, in the
                                       cache dtype; metadata "minisd" = JSON with the chunk's keys
  index.json                           per split: chunk files in order and all keys in the same order,
                                       plus the VAE weights hash, scaling factor, latent shape, dtype
Position i of a split means `keys[i]`: join captions and labels by key (`indices(keys)`), never by
position in some other list. Chunks are memory-mapped, so a split larger than RAM is fine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from minisd.caches.storage import DTYPES, CacheError, open_mmap, read_index

LATENT_FORMAT = "minisd.latent-cache/1"
INDEX = "index.json"


def _scalar(idx) -> bool:
    return not hasattr(idx, "__len__") and not hasattr(idx, "__iter__")


class LatentCache:
    def __init__(self, folder: Path, split: str, index: dict):
        entry = index["splits"][split]
        self.folder, self.split = folder, split
        self.keys: list[str] = entry["keys"]
        self.chunks: list[dict] = entry["chunks"]
        self.vae_hash: str = index["vae_hash"]
        self.scaling_factor: float = index["scaling_factor"]
        self.latent_shape: tuple[int, int, int] = tuple(index["latent_shape"])
        self.dtype: str = index["dtype"]
        self._starts = [0]
        for chunk in self.chunks:
            self._starts.append(self._starts[-1] + chunk["count"])
        if self._starts[-1] != len(self.keys):
            raise CacheError(
                f"{folder / INDEX}: {split} chunks hold {self._starts[-1]} rows but list {len(self.keys)} keys"
            )
        self._position = {key: i for i, key in enumerate(self.keys)}
        self._maps: list[dict[str, torch.Tensor]] | None = None

    @classmethod
    def open(cls, folder: str | Path, split: str) -> "LatentCache":
        folder = Path(folder)
        index = read_index(folder, INDEX, LATENT_FORMAT, "latent", "encode_latents")
        index_path = folder / INDEX
        if split not in index["splits"]:
            raise CacheError(f"{index_path}: no split {split!r} (has {sorted(index['splits'])})")
        return cls(folder, split, index)

    # Memory maps are opened lazily and never pickled, so DataLoader workers each map the files
    # themselves instead of receiving a copy of the data.
    def __getstate__(self):
        return {**self.__dict__, "_maps": None}

    def _chunk(self, i: int) -> dict[str, torch.Tensor]:
        if self._maps is None:
            self._maps = [None] * len(self.chunks)
        if self._maps[i] is None:
            path = self.folder / self.chunks[i]["file"]
            tensors, _ = open_mmap(path)
            shape = (self.chunks[i]["count"], *self.latent_shape)
            for name in ("mean", "std"):
                if name not in tensors or tuple(tensors[name].shape) != shape:
                    raise CacheError(f"{path}: {name!r} missing or not of shape {shape}; rerun encode_latents")
            self._maps[i] = tensors
        return self._maps[i]

    def __len__(self) -> int:
        return len(self.keys)

    def index_of(self, key: str) -> int:
        try:
            return self._position[key]
        except KeyError:
            raise KeyError(f"sample {key!r} is not in the {self.split} latent cache {self.folder}") from None

    def indices(self, keys: Sequence[str]) -> list[int]:
        return [self.index_of(key) for key in keys]

    def _gather(self, name: str, idx) -> torch.Tensor:
        if isinstance(idx, slice):
            idx = range(*idx.indices(len(self)))
        positions = torch.as_tensor(idx if torch.is_tensor(idx) else list(idx) if not _scalar(idx) else idx)
        if positions.ndim == 0:
            return self._gather(name, positions.reshape(1))[0]
        positions = positions.to(torch.long)
        out = torch.empty((len(positions), *self.latent_shape), dtype=DTYPES[self.dtype])
        if len(positions) == 0:
            return out
        if positions.min() < 0 or positions.max() >= len(self):
            raise IndexError(f"latent index out of range for {self.split} ({len(self)} samples)")
        chunk_of = torch.searchsorted(torch.tensor(self._starts[1:]), positions, right=True)
        for c in chunk_of.unique().tolist():
            where = (chunk_of == c).nonzero().squeeze(1)
            out[where] = self._chunk(c)[name][positions[where] - self._starts[c]]
        return out

    def mean(self, idx) -> torch.Tensor:
        """Latent means (already * scaling_factor) at split positions `idx` (int, slice, list, tensor)."""
        return self._gather("mean", idx)

    def std(self, idx) -> torch.Tensor:
        return self._gather("std", idx)

    def load_all(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of the whole split in RAM, rows in `keys` order; for small datasets."""
        if not self.chunks:
            empty = torch.empty((0, *self.latent_shape), dtype=DTYPES[self.dtype])
            return empty, empty.clone()
        return tuple(
            torch.cat([self._chunk(i)[name] for i in range(len(self.chunks))]).clone() for name in ("mean", "std")
        )

    def check(self, vae_hash: str) -> None:
        """Fail if the latents were made by another VAE than the caller's (e.g. a retrained one)."""
        if vae_hash != self.vae_hash:
            raise CacheError(
                f"{self.folder}: latents were made by a different VAE (cache has {self.vae_hash[:16]}..., "
                f"the VAE in use has {vae_hash[:16]}...); rerun `dvc repro encode_latents`"
            )

    def check_model(self, vae_dir: str | Path) -> None:
        from minisd.components import weights_hash

        self.check(weights_hash(vae_dir))
