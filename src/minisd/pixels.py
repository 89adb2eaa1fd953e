"""8-bit gray sketches as model pixels: the one conversion the VAE, its caches and the CLIP share.

The shards hold 8-bit grayscale; every VAE here is RGB like SD's (a pretrained VAE is then a
drop-in), so gray is repeated over the channels on the way in (`imagegrid.to_uint8` averages it back).
"""

from __future__ import annotations

import numpy as np
import torch


def to_pixels(images: np.ndarray | torch.Tensor, channels: int = 3) -> torch.Tensor:
    """uint8 (N, H, W) gray -> float (N, channels, H, W) in [-1, 1], the range diffusers VAEs use."""
    images = torch.as_tensor(images)
    x = images.float().div(127.5).sub(1.0).unsqueeze(1)
    return x.expand(-1, channels, -1, -1).contiguous()
