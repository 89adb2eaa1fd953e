"""VAE training speed on this machine: images/s for fp32 vs bf16 autocast, full 128 px vs 64 px crops.

    python benchmarks/bench_vae.py [--steps 8] [--batch 16] [--threads 2] [--params params.yaml]

Uses the `vae` section of params (architecture, loss weights) and the training step of
`minisd.vae.trainer` (VaeForward + VaeLoss + AdamW + grad clip) on random line drawings, so the
numbers are what `train_vae` gets per step, without validation or logging. Prints median img/s
over `--steps` timed steps after 2 warm-up steps. bf16 rows are skipped on a CPU without native
bf16 (it would be emulated and slower than fp32: the trainer's "auto" picks fp32 there).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import cv2
import numpy as np
import torch

from minisd.config import load_params
from minisd.training.optim import adamw
from minisd.training.precision import cpu_has_native_bf16
from minisd.training.rng import seeded_generator
from minisd.vae.data import ImageBank
from minisd.vae.losses import VaeLoss
from minisd.vae.model import load_vae
from minisd.vae.trainer import VaeForward


def line_drawings(count: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = np.full((count, size, size), 255, np.uint8)
    for image in images:
        for _ in range(3):
            points = rng.integers(8, size - 8, (4, 2)).astype(np.int32)
            cv2.polylines(image, [points], bool(rng.integers(2)), 0, int(rng.integers(2, 4)))
    return images


def images_per_second(params, bank: ImageBank, crop: int | None, bf16: bool, batch: int, steps: int) -> float:
    vae = load_vae(params).train()
    model = VaeForward(vae, decoder_only=False)
    loss_fn = VaeLoss(params.loss)
    optimizer = adamw(vae.parameters(), lr=params.lr)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        generator = seeded_generator(0, i)
        x = bank.batch(batch, generator, crop)
        with autocast():
            recon, kl = model(x, generator)
        loss, _ = loss_fn(recon, x, kl)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= 2:
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    params = load_params(args.params).vae
    bank = ImageBank(line_drawings(256, 128))
    crop = params.crop_size or 64
    rows = [("fp32", None), ("bf16", None), ("fp32", crop), ("bf16", crop)]
    native = cpu_has_native_bf16()
    print(f"VAE {params.block_out_channels}, batch {args.batch}, {args.threads} threads, "
          f"native bf16: {native}, median of {args.steps} steps")
    print(f"{'precision':<10} {'pixels':>8} {'img/s':>8}")
    for precision, size in rows:
        label = f"{size or 128} px"
        if precision == "bf16" and not native:
            print(f"{precision:<10} {label:>8} {'skipped':>8}")
            continue
        rate = images_per_second(params, bank, size, precision == "bf16", args.batch, args.steps)
        print(f"{precision:<10} {label:>8} {rate:8.1f}", flush=True)


if __name__ == "__main__":
    main()
