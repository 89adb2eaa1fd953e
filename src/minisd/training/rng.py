"""Python, numpy and torch (CPU + CUDA) RNG states as JSON + uint8 tensors, for exact resume."""

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
