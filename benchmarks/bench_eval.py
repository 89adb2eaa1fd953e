"""Evaluate-stage speed on this machine: export, sampling s/image per batch size, and per batch
size the judge's scoring and the VAE round trip (the judge's ceiling; train_vae's validation).

Builds untrained models at the sizes params.yaml asks for (weights do not change the speed), so it
runs before any training. Usage: python benchmarks/bench_eval.py [--steps 20] [--batch-sizes 1 8 16]
[--judge-batches 32 256] [--roundtrip-batches 8 32]. Prints a table; compare medians, the machine
may be shared. On a CPU, small batches win where 128 px activations then fit in cache: the defaults
(`judge.model.BATCH`, `vae.validation.RECONSTRUCT_BATCH`) were picked from these rows.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from diffusers import DDPMScheduler

from minisd.text_encoder import load_text_encoder, load_tokenizer
from minisd.unet.model import build_unet
from minisd.vae.model import load_vae
from minisd.vae.validation import RECONSTRUCT_BATCH, reconstruct
from minisd.config import load_params
from minisd.judge.model import BATCH, Judge, JudgeNet
from minisd.pipeline import export_pipeline, load_pipeline, sample

CAPTIONS = [f"a {s} {c} in the {p}" for s in ("small", "large") for c in ("star", "house", "fish") for p in ("top left", "center")]


def build_models(root: Path, params) -> Path:
    models = root / "models"
    tokenizer = load_tokenizer(params.tokenizer, CAPTIONS * 20)
    tokenizer.save_pretrained(models / "tokenizer")
    encoder = load_text_encoder(params.text_encoder, tokenizer)
    encoder.save_pretrained(models / "text_encoder")
    vae = load_vae(params.vae)
    vae.save_pretrained(models / "vae")
    build_unet(params.unet, encoder.config.hidden_size, vae.config.latent_channels).save_pretrained(models / "unet")
    ns = params.unet.noise_scheduler
    DDPMScheduler(num_train_timesteps=ns.num_train_timesteps, beta_schedule=ns.beta_schedule, beta_start=ns.beta_start,
                  beta_end=ns.beta_end, prediction_type=ns.prediction_type, clip_sample=False, steps_offset=1,
                  ).save_pretrained(models / "scheduler")
    return models


def median_rate(run, items: int, repeat: int) -> float:
    """items/s, the median of `repeat` timed calls after one warm-up call."""
    run()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return items / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=None, help="default: evaluate.steps")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--images", type=int, default=16, help="images per measurement")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--judge-batches", type=int, nargs="+", default=[BATCH, 256])
    parser.add_argument("--roundtrip-batches", type=int, nargs="+", default=[RECONSTRUCT_BATCH, 32])
    args = parser.parse_args()
    params = load_params()
    steps = args.steps or params.evaluate.steps
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = build_models(Path(tmp), params)
        t = time.perf_counter()
        export_pipeline(models, Path(tmp) / "pipeline", params.evaluate.scheduler)
        rows.append(("export pipeline", f"{time.perf_counter() - t:.2f} s"))
        pipe = load_pipeline(Path(tmp) / "pipeline")
        texts = [CAPTIONS[i % len(CAPTIONS)] for i in range(args.images)]
        sample(pipe, texts[:1], [0], steps, params.evaluate.guidance)  # warm-up
        for batch in args.batch_sizes:
            runs = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                images = sample(pipe, texts, list(range(args.images)), steps, params.evaluate.guidance, batch)
                runs.append((time.perf_counter() - t) / args.images)
            rows.append((f"sample {steps} steps, batch {batch}", f"{statistics.median(runs):.3f} s/img"))
    judge = Judge(JudgeNet(params.judge.channels, 14), [str(i) for i in range(14)], params.judge.image_size)
    many = np.repeat(images, 40, axis=0)
    for batch in args.judge_batches:
        rate = median_rate(lambda: (judge.predict(many, batch), judge.features(many, batch)), 2 * len(many), args.repeat)
        rows.append((f"judge predict+features, batch {batch}", f"{rate:.0f} img/s"))
    vae, some = load_vae(params.vae).eval(), np.repeat(images, 4, axis=0)
    for batch in args.roundtrip_batches:
        rate = median_rate(lambda: reconstruct(vae, some, batch), len(some), args.repeat)
        rows.append((f"VAE round trip, batch {batch}", f"{rate:.0f} img/s"))
    rows.append(("image size", f"{images.shape[2]}x{images.shape[1]}"))
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
