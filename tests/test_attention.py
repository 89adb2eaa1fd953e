"""The trainers' attention switch: the same function as the libraries' SDPA, used only on CPU + bf16."""

import torch
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from minisd.training.attention import fused_attention_is_slow, train_with_fast_attention, use_matmul_attention
from minisd.training.precision import make_accelerator
from _tiny_models import tiny_clip, tiny_tokenizer, tiny_unet


def _unet():
    torch.manual_seed(0)
    return tiny_unet(sample_size=8)


def _clip():
    tokenizer = tiny_tokenizer()
    return tiny_clip(tokenizer), tokenizer


def _processors(unet) -> set[type]:
    return {type(p) for p in unet.attn_processors.values()}


def test_only_cpu_bf16_switches():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert fused_attention_is_slow(cpu, "bf16")
    assert not fused_attention_is_slow(cpu, "no") and not fused_attention_is_slow(cuda, "bf16")
    unet, (clip, _) = _unet(), _clip()
    accelerator = make_accelerator("no")
    train_with_fast_attention(unet, accelerator)
    train_with_fast_attention(clip, accelerator)
    assert _processors(unet) == {AttnProcessor2_0} and clip.config._attn_implementation == "sdpa"
    accelerator = make_accelerator("bf16")
    train_with_fast_attention(unet, accelerator)
    train_with_fast_attention(clip, accelerator)
    assert _processors(unet) == {AttnProcessor} and clip.config._attn_implementation == "eager"


def test_matmul_attention_computes_what_sdpa_does():
    unet = _unet().eval()
    latents, states, t = torch.randn(2, 4, 8, 8), torch.randn(2, 5, 32), torch.tensor([10, 900])
    with torch.no_grad():
        fused = unet(latents, t, states).sample
        use_matmul_attention(unet)
        plain = unet(latents, t, states).sample
    torch.testing.assert_close(plain, fused, rtol=1e-4, atol=1e-5)

    clip, tokenizer = _clip()
    clip.eval()
    ids = tokenizer(["a small cat", "a big dog top left"], padding="max_length", return_tensors="pt").input_ids
    pixels = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        fused = clip(input_ids=ids, pixel_values=pixels)
        use_matmul_attention(clip)
        plain = clip(input_ids=ids, pixel_values=pixels)
    torch.testing.assert_close(plain.text_embeds, fused.text_embeds, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(plain.image_embeds, fused.image_embeds, rtol=1e-4, atol=1e-5)
