"""The VAE stage's library: data, losses, metrics (reusable by evaluation) and the training loop.

Nothing is imported here on purpose: the caches need `vae.data` alone, and importing the
trainer with it would make them depend on (and rerun with) every VAE training module.
"""
