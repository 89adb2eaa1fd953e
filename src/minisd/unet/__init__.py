"""The text-conditioned UNet trained on cached latents and caption embeddings (stage train_unet)."""
