"""Full-size reconstructions for validation, the reconstruction grid, and the latent scaling factor."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from diffusers import AutoencoderKL

from minisd.imagegrid import GUTTER, tile, to_uint8
from minisd.pixels import to_pixels
from minisd.vae.metrics import reconstruction_metrics

SCALE_SAMPLES = 512  # images whose latents set the scaling factor; plenty for one std
# 8 full-size images keep a round trip's 128 px activations in a CPU's cache: 1.7-1.9x the images/s of
# 32 on 2 cores (fp32; benchmarks/bench_eval.py), the same pixels; validation only, so no param
RECONSTRUCT_BATCH = 8


def to_gray_uint8(pixels: torch.Tensor) -> np.ndarray:
    """VAE output (N, C, H, W) in [-1, 1] -> uint8 (N, H, W): the RGB channels averaged back to gray."""
    return to_uint8(pixels.detach().float().mean(dim=1))


@torch.no_grad()
def reconstruct(vae: AutoencoderKL, images: np.ndarray, batch_size: int = RECONSTRUCT_BATCH,
                autocast=None) -> np.ndarray:
    """uint8 (N, H, W) -> uint8 (N, H, W) through the posterior mean (deterministic)."""
    device, channels = next(vae.parameters()).device, vae.config.in_channels
    out = []
    for start in range(0, len(images), batch_size):
        x = to_pixels(images[start : start + batch_size], channels).to(device)
        with autocast() if autocast else contextlib.nullcontext():
            latents = vae.encode(x).latent_dist.mode()
            out.append(to_gray_uint8(vae.decode(latents).sample))
    return np.concatenate(out) if out else np.zeros_like(images)


def score_reconstructions(vae: AutoencoderKL, images: np.ndarray, batch_size: int = RECONSTRUCT_BATCH,
                          autocast=None):
    """(metrics dict, reconstructions) on full-size images."""
    recon = reconstruct(vae, images, batch_size, autocast)
    return reconstruction_metrics(images, recon), recon


def reconstruction_grid(originals: np.ndarray, recons: np.ndarray, columns: int = 8) -> np.ndarray:
    """Originals on top, their reconstructions below, in row pairs of `columns` images."""
    n = min(len(originals), len(recons))
    blank = np.full_like(originals[0], GUTTER)
    cells = []
    for start in range(0, n, columns):
        for source in (originals, recons):
            row = list(source[start : min(start + columns, n)])
            cells += row + [blank] * (columns - len(row))
    return tile(np.stack(cells), columns)


@torch.no_grad()
def latent_scaling_factor(vae: AutoencoderKL, images: np.ndarray, seed: int = 0, batch_size: int = 32,
                          autocast=None) -> float:
    """1 / std of sampled latents over a fixed image sample: unit-variance latents for the UNet.

    0.18215 is this number for SD's own VAE only; ours is measured, as SD measured theirs.
    """
    device, channels = next(vae.parameters()).device, vae.config.in_channels
    generator = torch.Generator(device="cpu").manual_seed(seed)
    latents = []
    for start in range(0, min(len(images), SCALE_SAMPLES), batch_size):
        stop = min(start + batch_size, SCALE_SAMPLES, len(images))
        x = to_pixels(images[start:stop], channels).to(device)
        with autocast() if autocast else contextlib.nullcontext():
            dist = vae.encode(x).latent_dist
        mean, std = dist.mean.float().cpu(), dist.std.float().cpu()
        latents.append(mean + std * torch.randn(mean.shape, generator=generator))
    std = torch.cat(latents).std().item()
    if not np.isfinite(std) or std <= 0:
        raise ValueError(f"latent std is {std}; cannot set a scaling factor")
    return 1.0 / std
