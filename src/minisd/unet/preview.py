"""Preview grids during training: fixed prompts x fixed seeds, drawn by the pipeline evaluate exports.

As the diffusers training examples' `log_validation`, the training UNet (its EMA weights swapped
in) goes into a StableDiffusionPipeline with the trained VAE and the inference sampler; the
prompts' cached text states stand in for the text encoder, which train_unet never loads. So a
preview cell is what `generate --seed <column>` would draw with these weights: one sampler.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from PIL import Image

from minisd.params.unet import UnetParams
from minisd.imagegrid import tile
from minisd.pipeline import build_pipeline, inference_scheduler, sample


@dataclass
class Preview:
    """What the grids need: the VAE to decode, and the fixed prompts' text states."""

    vae: AutoencoderKL
    cond: torch.Tensor  # (prompts, tokens, hidden)
    uncond: torch.Tensor  # (tokens, hidden): the "" prompt
    seeds: list[int]
    steps: int
    guidance: float


def load_preview(params: UnetParams, text, vae_dir: Path, device) -> Preview | None:
    """The first `sample_prompts` eval prompts of the text cache and the VAE; None when there are none."""
    rows = [text.row_of(p["text"]) for p in text.prompts[: params.sample_prompts]]
    if not rows:
        return None
    vae = AutoencoderKL.from_pretrained(vae_dir).to(device).eval().requires_grad_(False)
    return Preview(vae, text.embeddings[torch.tensor(rows, dtype=torch.long)].float(),
                   text.embeddings[text.empty_row].float(), list(range(params.sample_seeds)), params.sample_steps,
                   params.sample_guidance)


@torch.no_grad()
def preview_grid(unet, noise_scheduler, preview: Preview) -> Image.Image:
    """One row per prompt, one column per seed, sampled in full precision as evaluate samples."""
    pipe = build_pipeline(tokenizer=None, text_encoder=None, vae=preview.vae, unet=unet,
                          scheduler=inference_scheduler(noise_scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    columns = len(preview.seeds)
    images = sample(pipe, preview.cond.repeat_interleave(columns, dim=0), preview.seeds * len(preview.cond),
                    preview.steps, preview.guidance, desc=None, negative=preview.uncond)
    return Image.fromarray(tile(images, columns))
