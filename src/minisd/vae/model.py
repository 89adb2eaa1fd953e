"""The VAE from params: SD's AutoencoderKL layout at our size, or a pretrained one."""

from __future__ import annotations

from diffusers import AutoencoderKL

from minisd.components import load_pretrained, norm_groups, seeded
from minisd.params.vae import VaeParams


def load_vae(params: VaeParams) -> AutoencoderKL:
    """Scratch: RGB in/out like SD's VAE, so a pretrained VAE is a drop-in; f = 2**(blocks-1)."""
    if params.source == "pretrained":
        return load_pretrained(AutoencoderKL, params, "VAE", "vae")
    groups = norm_groups("vae", params.block_out_channels)
    n = len(params.block_out_channels)
    with seeded(params.seed):
        return AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * n,
            up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=tuple(params.block_out_channels),
            layers_per_block=params.layers_per_block,
            latent_channels=params.latent_channels,
            norm_num_groups=groups,
        )
