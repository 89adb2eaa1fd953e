"""Caches that let UNet training skip the text encoder and the VAE: text embeddings and latents."""

from minisd.caches.latent_cache import LatentCache
from minisd.caches.storage import CacheError
from minisd.caches.text_cache import TextCache

__all__ = ["CacheError", "LatentCache", "TextCache"]
