"""UNet training throughput: cached latents vs encoding every step, and achieved GFLOP/s vs peak.

    python benchmarks/bench_unet.py                 # default (params.yaml) and seed scale
    python benchmarks/bench_unet.py --iters 3 --configs default --compile

Prints three tables:
1. the machine's measured fp32 / bf16 matmul peak (2048^2);
2. per UNet config and variant (fp32, bf16 autocast, channels_last, larger batch, torch.compile):
   samples/s of a full training step (forward, backward, AdamW) and GFLOP/s counted with
   torch.utils.flop_counter, as % of the fp32 matmul peak;
3. cached latents + cached caption embeddings (what train_unet does) vs encoding the images with
   the VAE and the captions with the text encoder on every step (what diffusers'
   train_text_to_image.py does), on the same UNet, same precision.
Seed scale uses SD-1.5-shaped VAE and CLIP ViT-L/14 text encoder built from config (random
weights: speed depends on shapes only, and nothing is downloaded). Times are medians.
"""

from __future__ import annotations

import argparse
import time

import torch
from diffusers import AutoencoderKL
from transformers import CLIPTextConfig, CLIPTextModel
from unet_step import (TrainStep, autocast, batch_inputs, compiled_gradient_error, fake_cache, matmul_peak,
                       median_seconds, step_flops)

from minisd.config import load_params
from minisd.training.precision import resolve_mixed_precision
from minisd.unet.data import CaptionedLatents
from minisd.unet.diffusion import draw_noise

CPU = torch.device("cpu")
LATENT_CHANNELS, LATENT_SIZE, TIMESTEPS = 4, 16, 1000


def gflops_peak(precision: str) -> float:
    return 1000 * matmul_peak(CPU, precision, 2048, 5)



def _scales(args):
    params = load_params()
    default = dict(unet=params.unet, hidden=params.text_encoder.hidden_size,
                   text=CLIPTextConfig(vocab_size=params.tokenizer.vocab_size, hidden_size=params.text_encoder.hidden_size,
                                       num_hidden_layers=params.text_encoder.num_layers,
                                       num_attention_heads=params.text_encoder.num_heads,
                                       intermediate_size=params.text_encoder.intermediate_size,
                                       max_position_embeddings=params.tokenizer.max_length),
                   vae=dict(block_out_channels=tuple(params.vae.block_out_channels),
                            layers_per_block=params.vae.layers_per_block, latent_channels=params.vae.latent_channels,
                            norm_num_groups=min(32, *params.vae.block_out_channels)))
    seed_unet = params.unet.model_copy(update=dict(block_out_channels=[128, 256, 512]))
    seed = dict(unet=seed_unet, hidden=768,
                text=CLIPTextConfig(vocab_size=49408, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                    intermediate_size=3072, max_position_embeddings=77),  # CLIP ViT-L/14 text tower
                vae=dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                         norm_num_groups=32))  # SD's VAE
    probe = dict(default, unet=params.unet.model_copy(update=dict(block_out_channels=[32, 64, 128])))
    table = {"default": default, "seed": seed, "probe": probe}
    return {name: table[name] for name in args.configs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["default", "seed"], choices=["default", "seed", "probe"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    parser.add_argument("--skip-encode", action="store_true", help="skip the cached-vs-encode table")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, auto precision here: "
          f"{resolve_mixed_precision('auto', 'cpu')}")

    peak32, peak16 = gflops_peak("fp32"), gflops_peak("bf16")
    print(f"\nmatmul peak (2048^2): fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s")
    best_peak = peak32

    rows = []
    encode_rows = []
    for name, scale in _scales(args).items():
        variants = [("fp32", "fp32", False, False, args.batch), ("bf16", "bf16", False, False, args.batch),
                    ("fp32 channels_last", "fp32", True, False, args.batch),
                    ("bf16 channels_last", "bf16", True, False, args.batch), ("bf16", "bf16", False, False, 2 * args.batch)]
        if args.compile:
            variants += [("fp32 compile", "fp32", False, True, args.batch), ("bf16 compile", "bf16", False, True, args.batch)]
        data = fake_cache(max(256, 2 * args.batch), LATENT_CHANNELS, LATENT_SIZE, scale["text"].max_position_embeddings,
                          scale["hidden"])
        for label, precision, cl, comp, batch in variants:
            step = TrainStep(scale["unet"], scale["hidden"], LATENT_CHANNELS, CPU, precision, cl, comp)
            inputs = batch_inputs(data, batch, torch.Generator().manual_seed(1), TIMESTEPS, CPU)
            compile_s = grad_error = None
            if comp:
                start = time.perf_counter()
                step(*inputs)
                compile_s = time.perf_counter() - start
                grad_error = compiled_gradient_error(step, inputs)
            flops = step_flops(TrainStep(scale["unet"], scale["hidden"], LATENT_CHANNELS, CPU, precision, cl), inputs)
            seconds = median_seconds(lambda: step(*inputs), CPU, args.iters, args.warmup)
            best_peak = max(best_peak, gflops_peak("fp32"))  # re-measured at every row: load drifts
            params_m = step.parameters_m()
            rows.append((name, tuple(scale["unet"].block_out_channels), f"{params_m:.1f}M", label, batch,
                         batch / seconds, flops / 1e9, flops / seconds / 1e9, 100 * flops / seconds / 1e9 / best_peak,
                         compile_s, grad_error))
            print(_row(rows[-1]), flush=True)

        if not args.skip_encode:
            encode_rows.append(_cached_vs_encode(name, scale, data, args))
            print(encode_rows[-1], flush=True)

    print(f"\nmatmul peak: fp32 {peak32:.0f} GFLOP/s at start, best seen during the run {best_peak:.0f} "
          f"(% fp32 peak below: against the best seen up to that row)")
    print("| scale | UNet channels | params | variant | batch | samples/s | GFLOP/step | GFLOP/s | % fp32 peak | compile s "
          "| compiled grads vs eager |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(_row(row))
    if encode_rows:
        print("\n| scale | precision | batch | cached samples/s | encode-every-step samples/s | cached speedup |")
        print("|---|---|---|---|---|---|")
        for row in encode_rows:
            print(row)


def _row(r) -> str:
    name, ch, pm, label, batch, sps, gf, gfs, pct, comp, grad_error = r
    verdict = "" if grad_error is None else f"{grad_error:.3f}" + (" WRONG" if grad_error > 0.1 else "")
    return (f"| {name} | {ch} | {pm} | {label} | {batch} | {sps:.1f} | {gf:.2f} | {gfs:.0f} | {pct:.0f}% | "
            f"{'' if comp is None else f'{comp:.0f}'} | {verdict} |")


def _cached_vs_encode(name: str, scale: dict, data: CaptionedLatents, args) -> str:
    """Same UNet step, inputs either gathered from the caches or encoded from pixels and token ids."""
    precision = "bf16" if resolve_mixed_precision("auto", "cpu") == "bf16" else "fp32"
    step = TrainStep(scale["unet"], scale["hidden"], LATENT_CHANNELS, CPU, precision)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * len(scale["vae"]["block_out_channels"]),
                        up_block_types=("UpDecoderBlock2D",) * len(scale["vae"]["block_out_channels"]), **scale["vae"]).eval()
    text = CLIPTextModel(scale["text"]).eval()
    batch = args.batch
    g = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, 128, 128, generator=g) * 2 - 1
    ids = torch.randint(0, scale["text"].vocab_size, (batch, scale["text"].max_position_embeddings), generator=g)

    def cached():
        step(*batch_inputs(data, batch, g, TIMESTEPS, CPU))

    def encoded():
        with torch.no_grad(), autocast(CPU, precision):
            latents = vae.encode(images).latent_dist.sample() * 0.5
            cond = text(ids).last_hidden_state
        ratio = latents.shape[-1] / LATENT_SIZE  # a VAE with another downsampling factor: crop/resize to 16x16
        latents = latents[..., :LATENT_SIZE, :LATENT_SIZE] if ratio >= 1 else \
            torch.nn.functional.interpolate(latents, size=LATENT_SIZE)
        latents = latents.float().contiguous()
        step(latents, cond.float(), *draw_noise(latents, g, TIMESTEPS, 0.0))

    t_cached = median_seconds(cached, CPU, args.iters, args.warmup)
    t_encoded = median_seconds(encoded, CPU, args.iters, args.warmup)
    return (f"| {name} | {precision} | {batch} | {batch / t_cached:.1f} | {batch / t_encoded:.1f} | "
            f"{t_encoded / t_cached:.2f}x |")


if __name__ == "__main__":
    main()
