"""Preview grids during training: fixed prompts x fixed seeds, decoded with the trained VAE."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import AutoencoderKL, DPMSolverMultistepScheduler
from PIL import Image

from minisd.unet.data import seeded_generator


@torch.no_grad()
def sample_latents(unet, scheduler_config, cond: torch.Tensor, uncond: torch.Tensor, seeds: list[int],
                   steps: int, guidance: float, latent_shape: tuple[int, ...], device) -> torch.Tensor:
    """DPM-Solver++ with classifier-free guidance; cond: (P, tokens, hidden) -> (P * len(seeds), C, h, w)."""
    scheduler = DPMSolverMultistepScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(steps, device=device)
    cond = cond.repeat_interleave(len(seeds), dim=0).to(device)
    noise = [torch.randn(latent_shape, generator=seeded_generator(seed)) for seed in seeds]
    latents = torch.stack(noise * (len(cond) // len(seeds))).to(device) * scheduler.init_noise_sigma
    uncond = uncond.expand(len(cond), *uncond.shape[-2:]).to(device)
    for t in scheduler.timesteps:
        model_in = scheduler.scale_model_input(torch.cat([latents, latents]), t)
        out = unet(model_in, t, torch.cat([uncond, cond])).sample.float()
        out_uncond, out_cond = out.chunk(2)
        latents = scheduler.step(out_uncond + guidance * (out_cond - out_uncond), t, latents).prev_sample
    return latents


@torch.no_grad()
def decode_grid(vae: AutoencoderKL, latents: torch.Tensor, scaling_factor: float, columns: int) -> Image.Image:
    """Decode latents and tile them: one row per prompt, one column per seed."""
    images = vae.decode(latents.to(vae.device, vae.dtype) / scaling_factor).sample.float()
    images = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()  # (N, C, H, W)
    images = images.transpose(0, 2, 3, 1)
    if images.shape[-1] == 1:
        images = images[..., 0]
    rows = [np.concatenate(images[i : i + columns], axis=1) for i in range(0, len(images), columns)]
    return Image.fromarray(np.concatenate(rows, axis=0))
