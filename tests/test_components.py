"""Components from params: scratch builds are deterministic, pretrained folders load, errors name the key."""

from __future__ import annotations

import random

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from minisd.components import ComponentError, weights_hash
from minisd.text_encoder import load_text_encoder, load_tokenizer
from minisd.unet.model import build_unet
from minisd.vae.model import load_vae
from minisd.params.text import TextEncoderParams, TokenizerParams
from minisd.params.unet import UnetParams
from minisd.params.vae import VaeParams
from minisd.tokenizer import save_tokenizer

SHAPES = ["cat", "dog", "house", "star", "circle", "tree", "fish", "car"]
CAPTIONS = [
    f"a {size} {shape} in the {where}"
    for size in ("small", "medium", "large")
    for shape in SHAPES
    for where in ("top left", "center", "bottom right", "top", "left")
] + ["a sketch of a cat.", "two dogs, one house!"]

TOK = TokenizerParams(vocab_size=700, max_length=77)
TINY_TEXT = TextEncoderParams(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, seed=3)
TINY_VAE = VaeParams(block_out_channels=[8, 16], latent_channels=4)
TINY_UNET = UnetParams(
    block_out_channels=[16, 32],
    down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
    attention_head_dim=4,
    sample_size=8,
)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(TOK, CAPTIONS)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------- tokenizer


def test_tokenizer_is_clip_with_word_ends_and_specials(tokenizer):
    assert isinstance(tokenizer, CLIPTokenizer)
    ids = tokenizer("A Small CAT in the top left").input_ids
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "<|startoftext|>" and tokens[-1] == "<|endoftext|>"
    assert "small</w>" in tokens and "cat</w>" in tokens  # lower-cased, whole frequent words learned
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    assert tokenizer.bos_token_id != tokenizer.eos_token_id
    assert len(tokenizer) <= TOK.vocab_size
    assert tokenizer.decode(ids, skip_special_tokens=True) == "a small cat in the top left"
    # characters never seen in training still encode (byte fallback), and decode back
    assert tokenizer.decode(tokenizer("zebra ü 42").input_ids, skip_special_tokens=True) == "zebra ü 4 2"


def test_tokenizer_pads_and_truncates_to_max_length(tokenizer):
    short, long = "a cat", " ".join(["a large house"] * 60)
    batch = tokenizer([short, long], padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    assert batch.input_ids.shape == (2, 77)
    assert batch.input_ids[0, 3:].eq(tokenizer.pad_token_id).all()
    assert batch.input_ids[1, -1].item() == tokenizer.eos_token_id
    assert tokenizer.model_max_length == 77


def test_tokenizer_is_deterministic_and_round_trips_through_pretrained(tmp_path, tokenizer):
    shuffled = CAPTIONS[:]
    random.Random(0).shuffle(shuffled)
    folders = []
    for i, captions in enumerate([CAPTIONS, shuffled, CAPTIONS]):
        folder = tmp_path / f"tok{i}"
        save_tokenizer(load_tokenizer(TOK, captions), folder)
        folders.append(folder)
    names = sorted(p.name for p in folders[0].iterdir())
    assert {"tokenizer.json", "vocab.json", "merges.txt"} <= set(names)
    for folder in folders[1:]:
        assert sorted(p.name for p in folder.iterdir()) == names
        for name in names:
            assert (folder / name).read_bytes() == (folders[0] / name).read_bytes(), name

    loaded = load_tokenizer(TokenizerParams(source="pretrained", path=str(folders[0])))
    text = "a medium fish in the bottom right"
    assert loaded(text).input_ids == tokenizer(text).input_ids
    # the classic vocab.json + merges.txt alone are a complete tokenizer too
    classic = CLIPTokenizer(vocab=str(folders[0] / "vocab.json"), merges=str(folders[0] / "merges.txt"))
    assert classic(text).input_ids == tokenizer(text).input_ids


def test_scratch_tokenizer_needs_captions():
    with pytest.raises(ComponentError, match="captions"):
        load_tokenizer(TOK, [])


# ----------------------------------------------------------------------------- text encoder


def test_scratch_text_encoder_is_seeded_frozen_and_sized(tokenizer):
    a, b = load_text_encoder(TINY_TEXT, tokenizer), load_text_encoder(TINY_TEXT, tokenizer)
    assert _same_weights(a, b)
    c = load_text_encoder(TINY_TEXT.model_copy(update={"seed": 4}), tokenizer)
    assert not _same_weights(a, c)
    assert not a.training and not any(p.requires_grad for p in a.parameters())
    assert a.config.vocab_size == len(tokenizer) and a.config.max_position_embeddings == 77
    ids = tokenizer(["a cat"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    assert a(ids).last_hidden_state.shape == (1, 77, 32)


def test_pretrained_text_encoder_loads_from_local_subfolder(tmp_path, tokenizer):
    model = load_text_encoder(TINY_TEXT, tokenizer)
    model.save_pretrained(tmp_path / "sd" / "text_encoder")
    params = TextEncoderParams(source="pretrained", path=str(tmp_path / "sd"), subfolder="text_encoder")
    loaded = load_text_encoder(params, tokenizer)
    assert isinstance(loaded, CLIPTextModel) and _same_weights(model, loaded)
    assert not any(p.requires_grad for p in loaded.parameters())


def test_text_encoder_heads_must_divide_hidden(tokenizer):
    with pytest.raises(ComponentError, match=r"text_encoder\.num_heads"):
        load_text_encoder(TINY_TEXT.model_copy(update={"num_heads": 5}), tokenizer)


# ----------------------------------------------------------------------------- VAE and UNet


def test_scratch_vae_default_is_f8_with_four_latent_channels():
    vae = load_vae(VaeParams())
    with torch.no_grad():
        latents = vae.encode(torch.zeros(1, 3, 128, 128)).latent_dist.mean
    assert latents.shape == (1, 4, 16, 16)
    assert _same_weights(vae, load_vae(VaeParams()))


def test_pretrained_vae_loads_from_local_folder(tmp_path):
    vae = load_vae(TINY_VAE)
    vae.save_pretrained(tmp_path / "vae")
    loaded = load_vae(VaeParams(source="pretrained", path=str(tmp_path / "vae")))
    assert isinstance(loaded, AutoencoderKL) and _same_weights(vae, loaded)


def test_missing_pretrained_folder_names_component_key_and_fix(tmp_path):
    missing = str(tmp_path / "nowhere" / "sd-vae-ft-mse")
    with pytest.raises(ComponentError) as info:
        load_vae(VaeParams(source="pretrained", path=missing))
    message = str(info.value)
    assert "VAE" in message and "vae.path" in message and missing in message and "local folder" in message


def test_missing_subfolder_names_the_subfolder_key(tmp_path, tokenizer):
    load_text_encoder(TINY_TEXT, tokenizer).save_pretrained(tmp_path / "te")
    params = TextEncoderParams(source="pretrained", path=str(tmp_path), subfolder="text_encoder")
    with pytest.raises(ComponentError, match=r"`text_encoder\.subfolder` is .text_encoder., but"):
        load_text_encoder(params, tokenizer)


def test_bad_vae_channels_name_the_key():
    with pytest.raises(ComponentError, match=r"vae\.block_out_channels: \[4, 12\]"):
        load_vae(VaeParams(block_out_channels=[4, 12]))
    assert load_vae(VaeParams(block_out_channels=[8, 16])).config.norm_num_groups == 8
    assert load_vae(VaeParams(block_out_channels=[32, 64, 128, 128])).config.norm_num_groups == 32  # SD's value


def test_build_unet_is_seeded_and_conditioned(tmp_path):
    unet = build_unet(TINY_UNET, cross_attention_dim=32, latent_channels=4)
    assert isinstance(unet, UNet2DConditionModel)
    assert unet.config.in_channels == unet.config.out_channels == 4
    assert unet.config.cross_attention_dim == 32 and unet.config.sample_size == 8
    assert _same_weights(unet, build_unet(TINY_UNET, 32, 4))
    with torch.no_grad():
        out = unet(torch.zeros(2, 4, 8, 8), torch.tensor([1, 500]), torch.zeros(2, 77, 32)).sample
    assert out.shape == (2, 4, 8, 8)
    with pytest.raises(ComponentError, match=r"unet\.attention_head_dim"):
        build_unet(TINY_UNET.model_copy(update={"attention_head_dim": 5}), 32, 4)
    bad_kind = TINY_UNET.model_copy(update={"down_block_types": ["NoSuchBlock2D", "DownBlock2D"]})
    with pytest.raises(ComponentError, match=r"unet\.down_block_types"):
        build_unet(bad_kind, 32, 4)


def test_pooled_text_conditioning_joins_the_timestep_embedding():
    """addition_embed_type "text": the caption, attention-pooled, is added to the timestep embedding
    that every ResNet block receives; without it the text enters through cross-attention only."""
    pooled = build_unet(TINY_UNET.model_copy(update={"addition_embed_type": "text"}), 32, 4)
    texts = [torch.randn(1, 5, 32, generator=torch.Generator().manual_seed(s)) for s in (1, 2)]
    with torch.no_grad():
        a, b = (pooled.get_aug_embed(emb=None, encoder_hidden_states=h, added_cond_kwargs={}) for h in texts)
        assert a.shape == (1, pooled.time_embedding.linear_2.out_features) and not torch.allclose(a, b)
        assert build_unet(TINY_UNET, 32, 4).get_aug_embed(emb=None, encoder_hidden_states=texts[0],
                                                          added_cond_kwargs={}) is None
        out = pooled(torch.zeros(1, 4, 8, 8), torch.tensor([500]), texts[0]).sample
    assert out.shape == (1, 4, 8, 8)
    with pytest.raises(ComponentError, match=r"unet\.addition_embed_type_num_heads"):
        build_unet(TINY_UNET.model_copy(update={"addition_embed_type": "text",
                                                "addition_embed_type_num_heads": 5}), 32, 4)


def test_weights_hash_tracks_weights_not_location(tmp_path):
    vae = load_vae(TINY_VAE)
    vae.save_pretrained(tmp_path / "a")
    vae.save_pretrained(tmp_path / "b")
    assert weights_hash(tmp_path / "a") == weights_hash(tmp_path / "b")
    with torch.no_grad():
        next(vae.parameters()).add_(1.0)
    vae.save_pretrained(tmp_path / "c")
    assert weights_hash(tmp_path / "c") != weights_hash(tmp_path / "a")
    with pytest.raises(FileNotFoundError):
        weights_hash(tmp_path / "missing")
