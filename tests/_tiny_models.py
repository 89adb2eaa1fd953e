"""Tiny untrained model folders (saved with save_pretrained, as the upstream stages save theirs), a
tiny tokenizer and an eval prompts file, for the clip/judge/evaluate/generate tests: nothing downloads."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from tokenizers.pre_tokenizers import ByteLevel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from minisd.clip.model import build_clip
from minisd.params.clip import ClipParams
from minisd.params.text import TextEncoderParams


def tiny_tokenizer(max_length: int = 16) -> CLIPTokenizer:
    """Byte-level characters as the whole vocabulary: a valid CLIP BPE with no merges."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    alphabet = sorted(ByteLevel.alphabet())
    for suffix in ("", "</w>"):
        for c in alphabet:
            vocab[c + suffix] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def tiny_vae(image_channels: int = 1, block_out_channels: tuple[int, ...] = (8, 16), sample_size: int = 32,
             scaling_factor: float = 0.5, seed: int = 0) -> AutoencoderKL:
    """An untrained VAE that downsamples 2 ** (levels - 1) times, in eval mode and frozen."""
    torch.manual_seed(seed)
    levels = len(block_out_channels)
    return AutoencoderKL(
        in_channels=image_channels, out_channels=image_channels, block_out_channels=block_out_channels,
        down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
        norm_num_groups=8, latent_channels=4, layers_per_block=1, sample_size=sample_size,
        scaling_factor=scaling_factor,
    ).eval().requires_grad_(False)


def tiny_unet(sample_size: int) -> UNet2DConditionModel:
    """An untrained UNet with cross-attention (on 32-wide caption states) at its first level only."""
    return UNet2DConditionModel(
        sample_size=sample_size, in_channels=4, out_channels=4, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1, cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8,
    )


def tiny_clip(tokenizer: CLIPTokenizer):
    """An untrained CLIPModel (ViT on 16 px images, patches of 8) built as train_clip builds its own."""
    return build_clip(
        ClipParams(image_size=16, patch_size=8, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                   projection_dim=16),
        TextEncoderParams(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64), tokenizer)


def make_models(root: Path, image_channels: int = 1, image_size: int = 32) -> Path:
    """models/{tokenizer,text_encoder,vae,unet,scheduler} as the upstream stages save them, but tiny."""
    models = root / "models"
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    tokenizer.save_pretrained(models / "tokenizer")
    CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    )).save_pretrained(models / "text_encoder")
    tiny_vae(image_channels, (8, 16, 16), image_size).save_pretrained(models / "vae")
    tiny_unet(image_size // 4).save_pretrained(models / "unet")
    DDPMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
        steps_offset=1, prediction_type="epsilon",
    ).save_pretrained(models / "scheduler")
    tiny_clip(tokenizer).save_pretrained(models / "clip")
    tokenizer.save_pretrained(models / "clip")
    return models


def make_prompts(path: Path) -> Path:
    prompts = [
        {"text": "a small circle in the top left", "class": "circle", "attributes": {"size": "small", "position": "top left"}},
        {"text": "a square", "class": "square", "attributes": {"size": None, "position": None}},
        {"text": "a large cross in the center", "class": "cross", "attributes": {"size": "large", "position": "center"}},
        {"text": "something free", "class": None, "attributes": {"size": None, "position": None}},
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(prompts))
    return path
