"""The VAE stage's library: data, losses, metrics (reusable by evaluation) and the training loop."""

from minisd.vae.data import to_gray_uint8, to_pixels
from minisd.vae.metrics import ink_f1, psnr, reconstruction_metrics, ssim
from minisd.vae.trainer import train_vae

__all__ = ["ink_f1", "psnr", "reconstruction_metrics", "ssim", "to_gray_uint8", "to_pixels", "train_vae"]
