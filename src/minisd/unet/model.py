"""The UNet from params: SD's UNet2DConditionModel layout at our size, trained from scratch."""

from __future__ import annotations

from diffusers import UNet2DConditionModel

from minisd.components import ComponentError, norm_groups, param_error, seeded
from minisd.params.unet import UnetParams


def build_unet(params: UnetParams, cross_attention_dim: int, latent_channels: int) -> UNet2DConditionModel:
    """SD's UNet layout at our size. GroupNorm groups: 32 as in SD, fewer only for tiny channel counts."""
    channels = list(params.block_out_channels)
    groups = norm_groups("unet", channels)
    heads = params.attention_head_dim  # diffusers reads this as the number of heads (SD convention)
    for channel, kind in zip(channels, params.down_block_types):
        if "CrossAttn" in kind and channel % heads:
            raise param_error("unet", "attention_head_dim", f"{heads} does not divide block channels {channel}")
    if params.addition_embed_type and cross_attention_dim % params.addition_embed_type_num_heads:
        raise param_error("unet", "addition_embed_type_num_heads",
                          f"{params.addition_embed_type_num_heads} does not divide the text width {cross_attention_dim}")
    try:
        with seeded(params.seed):
            return UNet2DConditionModel(
                sample_size=params.sample_size,
                in_channels=latent_channels,
                out_channels=latent_channels,
                down_block_types=tuple(params.down_block_types),
                up_block_types=tuple(params.up_block_types),
                block_out_channels=tuple(channels),
                layers_per_block=params.layers_per_block,
                cross_attention_dim=cross_attention_dim,
                attention_head_dim=heads,
                norm_num_groups=groups,
                addition_embed_type=params.addition_embed_type,
                addition_embed_type_num_heads=params.addition_embed_type_num_heads,
            )
    except ValueError as error:
        raise ComponentError(f"unet.down_block_types / unet.up_block_types: {error}") from error
