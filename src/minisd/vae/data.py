"""Sketch images as VAE pixels, and random training batches drawn from memory.

The shards hold 8-bit grayscale; every VAE here is RGB like SD's (a pretrained VAE is then a
drop-in), so gray is repeated over 3 channels on the way in and averaged on the way out.
The datasets of this project fit in RAM (6000 x 128 x 128 bytes = 98 MB), so batches are cut
straight from one uint8 tensor: no loader processes, no decoding per step.
"""

from __future__ import annotations

import numpy as np
import torch


def to_pixels(images: np.ndarray | torch.Tensor, channels: int = 3) -> torch.Tensor:
    """uint8 (N, H, W) gray -> float (N, channels, H, W) in [-1, 1], the range diffusers VAEs use."""
    images = torch.as_tensor(images)
    x = images.float().div(127.5).sub(1.0).unsqueeze(1)
    return x.expand(-1, channels, -1, -1).contiguous()


class ImageBank:
    """All training images in one tensor; `batch()` draws random images and random crops.

    Randomness comes from torch's global generator, so the checkpoint's RNG snapshot makes a
    resumed run draw exactly the batches the uninterrupted run would have drawn.
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

    def batch(self, batch_size: int, crop: int | None = None) -> torch.Tensor:
        index = torch.randint(len(self.images), (batch_size,))
        images = self.images[index]
        if crop is not None and crop < images.shape[-1]:
            h, w = images.shape[-2:]
            ys = torch.randint(h - crop + 1, (batch_size,))
            xs = torch.randint(w - crop + 1, (batch_size,))
            images = torch.stack([im[y : y + crop, x : x + crop] for im, y, x in zip(images, ys, xs)])
        return to_pixels(images, self.channels)
