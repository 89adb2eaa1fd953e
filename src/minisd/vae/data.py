"""Random VAE training batches drawn from memory (pixels: `minisd.pixels.to_pixels`).

The datasets of this project fit in RAM (6000 x 128 x 128 bytes = 98 MB), so batches are cut
straight from one uint8 tensor: no loader processes, no decoding per step.
"""

from __future__ import annotations

import numpy as np
import torch

from minisd.pixels import to_pixels


class ImageBank:
    """All training images in one tensor; `batch()` draws random images and random crops.

    Every draw comes from the caller's generator (the trainer's `seeded_generator(seed, step, rank)`,
    as every trainer's), so batch n is the same whether or not the run was resumed before it.
    """

    def __init__(self, images: np.ndarray, channels: int = 3):
        if images.ndim != 3 or len(images) == 0:
            raise ValueError(f"expected a non-empty (N, H, W) uint8 array, got shape {images.shape}")
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.channels = channels

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> int:
        return self.images.shape[-1]

    def batch(self, batch_size: int, generator: torch.Generator, crop: int | None = None) -> torch.Tensor:
        index = torch.randint(len(self.images), (batch_size,), generator=generator)
        images = self.images[index]
        if crop is not None and crop < images.shape[-1]:
            h, w = images.shape[-2:]
            ys = torch.randint(h - crop + 1, (batch_size,), generator=generator)
            xs = torch.randint(w - crop + 1, (batch_size,), generator=generator)
            images = torch.stack([im[y : y + crop, x : x + crop] for im, y, x in zip(images, ys, xs)])
        return to_pixels(images, self.channels)
