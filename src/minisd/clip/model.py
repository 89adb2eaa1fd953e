"""The CLIPModel: text tower shaped by the `text_encoder` section, a small ViT from the `clip` section.

Saved with `save_pretrained`, so `CLIPModel.from_pretrained("models/clip")` loads it without this
project; its `text_model` is a stock `CLIPTextModel`, saved on its own for the pipeline.
"""

from __future__ import annotations

import math

import torch

from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig

from minisd.components import param_error, seeded
from minisd.text_encoder import load_text_encoder, text_config
from minisd.params.clip import ClipParams
from minisd.params.text import TextEncoderParams


def vision_config(params: ClipParams) -> CLIPVisionConfig:
    if params.image_size % params.patch_size:
        raise param_error("clip", "patch_size", f"{params.patch_size} does not divide image_size {params.image_size}")
    if params.hidden_size % params.num_heads:
        raise param_error("clip", "num_heads", f"{params.num_heads} does not divide hidden_size {params.hidden_size}")
    return CLIPVisionConfig(
        image_size=params.image_size,
        patch_size=params.patch_size,
        num_channels=3,  # grayscale repeated (stock CLIP processors fit), or gray + ink x, y
        ink_coordinates=params.ink_coordinates,  # saved in config.json: scorers feed the same input
        ink_crop=params.ink_crop,
        hidden_size=params.hidden_size,
        intermediate_size=params.intermediate_size,
        num_hidden_layers=params.num_layers,
        num_attention_heads=params.num_heads,
        hidden_act="quick_gelu",
    )


def build_clip(params: ClipParams, text_params: TextEncoderParams, tokenizer) -> CLIPModel:
    """A randomly initialised CLIPModel, byte-identical for the same params (seeded init)."""
    config = CLIPConfig(
        text_config=text_config(text_params, tokenizer).to_dict(),
        vision_config=vision_config(params).to_dict(),
        projection_dim=params.projection_dim,
        logit_scale_init_value=math.log(1 / params.temperature),
    )
    with seeded(params.seed):
        model = CLIPModel(config)
    # The text tower starts from the `text_encoder` section's own seeded init: the very encoder the
    # pipeline would freeze untrained, so "random vs trained text tower" is a clean A/B.
    model.text_model.load_state_dict(load_text_encoder(text_params, tokenizer).state_dict())
    model.text_model.requires_grad_(True)
    if not params.sincos_positions:
        return model
    with torch.no_grad():
        embedding = model.vision_model.embeddings.position_embedding.weight
        embedding[1:] = sincos_2d(params.image_size // params.patch_size, params.hidden_size)
        embedding[0] = 0  # the class token
    return model


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine patch positions (as in MAE), the init of the ViT's learned ones.

    A random init leaves a from-scratch ViT blind to *where* the ink is for hundreds of steps;
    captions name positions, so the vision tower should know them from the first step.
    """
    if dim % 4:
        raise param_error("clip", "hidden_size", f"{dim} must be a multiple of 4 (2-D sine-cosine positions)")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                            indexing="ij")
    parts = [torch.sin(ys.reshape(-1, 1) * omega), torch.cos(ys.reshape(-1, 1) * omega),
             torch.sin(xs.reshape(-1, 1) * omega), torch.cos(xs.reshape(-1, 1) * omega)]
    return torch.cat(parts, dim=1).float()
