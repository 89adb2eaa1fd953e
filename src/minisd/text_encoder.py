"""The tokenizer and the frozen text encoder from params: a BPE and a CLIP text tower of our own, or pretrained."""

from __future__ import annotations

from typing import Iterable

from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from minisd.components import ComponentError, load_pretrained, param_error, seeded
from minisd.params.text import TextEncoderParams, TokenizerParams
from minisd.tokenizer import train_clip_tokenizer


def load_tokenizer(params: TokenizerParams, captions: Iterable[str] | None = None) -> CLIPTokenizer:
    if params.source == "pretrained":
        tokenizer = load_pretrained(CLIPTokenizer, params, "tokenizer", "tokenizer")
        tokenizer.model_max_length = params.max_length
        return tokenizer
    captions = list(captions) if captions is not None else []
    if not captions:
        raise ComponentError(
            "tokenizer: `tokenizer.source: scratch` trains a BPE on the training captions, but none were given"
        )
    return train_clip_tokenizer(captions, params.vocab_size, params.max_length)


def text_config(params: TextEncoderParams, tokenizer) -> CLIPTextConfig:
    """The scratch text tower's shape: from the `text_encoder` section, vocabulary and length from the tokenizer."""
    if params.hidden_size % params.num_heads:
        raise param_error(
            "text_encoder", "num_heads", f"{params.num_heads} does not divide hidden_size {params.hidden_size}"
        )
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=params.hidden_size,
        intermediate_size=params.intermediate_size,
        num_hidden_layers=params.num_layers,
        num_attention_heads=params.num_heads,
        max_position_embeddings=tokenizer.model_max_length,
        hidden_act="quick_gelu",
        projection_dim=params.hidden_size,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def load_text_encoder(params: TextEncoderParams, tokenizer) -> CLIPTextModel:
    """Frozen, as SD freezes CLIP: eval mode and no gradients, whichever the source.

    `scratch` gives the random init of the shape `train_clip` trains; the pipeline uses the trained one.
    """
    if params.source == "pretrained":
        model = load_pretrained(CLIPTextModel, params, "text encoder", "text_encoder")
    else:
        with seeded(params.seed):
            model = CLIPTextModel(text_config(params, tokenizer))
    model.eval().requires_grad_(False)
    return model
