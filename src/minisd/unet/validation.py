"""Validation loss that is comparable across runs: fixed samples, timesteps, noise and captions.

Unweighted MSE (no min-SNR), posterior means instead of sampled latents, the first caption of
each sample and no caption dropout: only the weights change between two evaluations.
"""

from __future__ import annotations

import torch

from minisd.unet.data import CaptionedLatents, seeded_generator
from minisd.unet.diffusion import diffusion_loss

VAL_SEED = 20240601  # fixed on purpose: independent of the training seed


class FixedValidation:
    def __init__(self, data: CaptionedLatents, num_timesteps: int, max_samples: int, batch_size: int):
        n = min(len(data), max_samples)
        generator = seeded_generator(VAL_SEED)
        self.latents = data.mean[:n].float()
        self.cond_rows = torch.tensor([rows[0] for rows in data.caption_rows[:n]])
        self.embeddings = data.embeddings
        self.noise = torch.randn(self.latents.shape, generator=generator)
        spread = torch.linspace(0, num_timesteps - 1, n).round().long()  # every part of the schedule
        self.timesteps = spread[torch.randperm(n, generator=generator)]
        self.batch_size = batch_size

    def __len__(self) -> int:
        return len(self.latents)

    @torch.no_grad()
    def loss(self, unet, scheduler, device, autocast=None) -> float:
        total = 0.0
        for start in range(0, len(self), self.batch_size):
            part = slice(start, start + self.batch_size)
            args = [t.to(device) for t in (self.latents[part], self.embeddings[self.cond_rows[part]].float(),
                                           self.noise[part], self.timesteps[part])]
            with autocast() if autocast else torch.autocast(device.type, enabled=False):
                total += diffusion_loss(unet, scheduler, *args).item() * len(args[0])
        return total / len(self)
