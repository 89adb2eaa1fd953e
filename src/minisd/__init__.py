"""Mini-SD: a small latent diffusion model for 128 px text-to-sketch, trained by a DVC pipeline."""

__version__ = "0.1.0"
