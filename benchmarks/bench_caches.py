"""Throughput of the two caching stages' inner loops: captions/s (text encoder) and latents/s (VAE).

Random weights at two sizes: the offline default (params.yaml's VAE) and the seed's architectures
(CLIP ViT-L/14 text encoder; SD 1.x VAE), each in fp32 and under bf16 autocast (CPU) or fp16/bf16
(CUDA), with the same functions the stages run; the default VAE at every batch of --vae-batches
(on a CPU the rate depends on whether a batch's 128 px activations fit in cache: pick
`encode_latents.batch_size` from this table). Prints a table; medians of --repeat timed rounds
after one warm-up round.
Usage: python benchmarks/bench_caches.py [--repeat 3] [--only text|vae] [--vae-batches 4 8 16 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from transformers import CLIPTextConfig, CLIPTextModel

from minisd.attributes import POSITIONS, SIZES
from minisd.caches.embed import encode_texts
from minisd.caches.encode import encode_images
from minisd.config import load_params
from minisd.tokenizer import train_clip_tokenizer
from minisd.vae.model import load_vae

TEXT = {  # name: (hidden, layers, heads, intermediate, vocab, captions, batch)
    "default": (128, 4, 4, 512, 2048, 128, 64),
    "seed (ViT-L/14)": (768, 12, 12, 3072, 49408, 16, 16),
}
SEED_VAE = ((128, 256, 512, 512), 2, 4, [4])  # block_out_channels, layers_per_block, images, batches
WORDS = ("star", "house", "cat", "tree", "fish", "car", "cloud", "sun")


def precisions() -> list[str]:
    if torch.cuda.is_available():
        return ["no", "fp16", "bf16"] if torch.cuda.is_bf16_supported() else ["no", "fp16"]
    return ["no", "bf16"]


def accelerator(mixed_precision: str) -> Accelerator:
    AcceleratorState._reset_state(reset_partial_state=True)  # one process, several precisions in turn
    return Accelerator(mixed_precision=mixed_precision, cpu=not torch.cuda.is_available())


def rates(run, count: int, repeat: int) -> dict[str, float]:
    """items/s per precision; precisions alternate within each round, so a load spike from other
    processes on a shared machine hits all of them alike. Round 0 is a warm-up."""
    times: dict[str, list[float]] = {mp: [] for mp in precisions()}
    for round_ in range(repeat + 1):
        for mp in precisions():
            acc = accelerator(mp)
            start = time.perf_counter()
            run(acc)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if round_:
                times[mp].append(time.perf_counter() - start)
    return {mp: count / statistics.median(t) for mp, t in times.items()}


def captions(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return [
        f"a {SIZES[rng.integers(3)]} {WORDS[rng.integers(len(WORDS))]} in the {POSITIONS[rng.integers(9)]}"
        for _ in range(n)
    ]


def bench_text(repeat: int) -> list[tuple]:
    rows = []
    texts = captions(512)
    tokenizer = train_clip_tokenizer(texts, 2048, 77)
    for name, (hidden, layers, heads, inter, vocab, count, batch) in TEXT.items():
        config = CLIPTextConfig(
            vocab_size=max(vocab, len(tokenizer)), hidden_size=hidden, num_hidden_layers=layers,
            num_attention_heads=heads, intermediate_size=inter, max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        torch.manual_seed(0)
        model = CLIPTextModel(config).eval().requires_grad_(False)
        work = texts[:count]

        def run(acc):
            model.to(acc.device)
            for i in range(0, count, batch):
                encode_texts(tokenizer, model, work[i : i + batch], acc)

        for mp, rate in rates(run, count, repeat).items():
            rows.append(("text encoder", name, mp, batch, count, rate, "captions/s"))
            print(*rows[-1], flush=True)
    return rows


def bench_vae(repeat: int, batches: list[int]) -> list[tuple]:
    rows = []
    default = load_params("params.yaml").vae
    sizes = {"default": (tuple(default.block_out_channels), default.layers_per_block, 256, batches),
             "seed (SD VAE)": SEED_VAE}
    for name, (channels, layers, count, sweep) in sizes.items():
        torch.manual_seed(0)
        vae = load_vae(default.model_copy(update={"block_out_channels": list(channels),
                                                   "layers_per_block": layers})).eval().requires_grad_(False)
        vae.to(memory_format=torch.channels_last)  # as the stage runs it
        images = np.random.default_rng(0).integers(0, 256, (count, 128, 128), dtype=np.uint8)
        for batch in sweep:
            def run(acc, batch=batch):
                vae.to(acc.device)
                for i in range(0, count, batch):
                    encode_images(vae, images[i : i + batch], acc)

            for mp, rate in rates(run, count, repeat).items():
                rows.append(("VAE encoder", name, mp, batch, count, rate, "latents/s"))
                print(*rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["text", "vae"])
    parser.add_argument("--vae-batches", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    args = parser.parse_args()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {device}; torch {torch.__version__}")
    rows = []
    if args.only in (None, "text"):
        rows += bench_text(args.repeat)
    if args.only in (None, "vae"):
        rows += bench_vae(args.repeat, args.vae_batches)
    print(f"\n{'model':<13} {'size':<16} {'precision':<9} {'batch':>5} {'n':>5} {'rate':>9}")
    for model, size, mp, batch, n, rate, unit in rows:
        print(f"{model:<13} {size:<16} {mp:<9} {batch:>5} {n:>5} {rate:>9.1f} {unit}")


if __name__ == "__main__":
    main()
