"""`python -m minisd generate "a small star in the top left" -n 4 -o out.png`: text -> sketch PNG.

Image i uses seed + i, the same convention as the evaluation grid's columns, so a sample seen in
results/eval/grid.png can be regenerated here at full size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from minisd import paths
from minisd.imagegrid import tile
from minisd.params.evaluate import GUIDANCE, GUIDANCE_RESCALE, GUIDANCE_RESCALE_RANGE
from minisd.stage import StageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("prompt", help='what to draw, e.g. "a small star in the top left"')
    parser.add_argument("-n", "--num-images", type=int, default=1, help="images to draw (a grid when > 1)")
    parser.add_argument("--steps", type=int, default=25, help="denoising steps")
    parser.add_argument("--guidance", type=float, default=GUIDANCE, help="classifier-free guidance scale")
    parser.add_argument("--guidance-rescale", type=float, default=GUIDANCE_RESCALE,
                        help="0-1: pull the guided prediction's spread back toward the conditional one's (Lin et al.)")
    parser.add_argument("--seed", type=int, default=0, help="image i uses seed + i")
    parser.add_argument("-o", "--output", type=Path, default=Path("out.png"), help="PNG to write")
    parser.add_argument("--pipeline", type=Path, default=paths.PIPELINE, help="exported pipeline folder")
    parser.add_argument("--batch-size", type=int, default=8, help="images per denoising batch")
    parser.add_argument("--size", type=int, default=None, help="image side in px (default: the model's)")
    parser.add_argument(
        "--scheduler", choices=["dpmsolver++", "ddim", "euler", "ddpm"], default=None,
        help="sampler (default: the one exported with the pipeline)",
    )
    parser.set_defaults(run=run)


def _check(args) -> None:
    for name in ("num_images", "steps", "batch_size"):
        if getattr(args, name) < 1:
            raise StageError(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(args, name)})")
    if args.guidance < 0:
        raise StageError(f"--guidance must be >= 0 (got {args.guidance})")
    low, high = GUIDANCE_RESCALE_RANGE
    if not low <= args.guidance_rescale <= high:
        raise StageError(f"--guidance-rescale must be from {low:g} to {high:g} (got {args.guidance_rescale})")
    if args.size is not None and (args.size < 8 or args.size % 8):
        raise StageError(f"--size must be a positive multiple of 8 (got {args.size})")
    if args.output.suffix.lower() != ".png":
        raise StageError(f"--output must end in .png (got {args.output})")


def run(args) -> int:
    from minisd.pipeline import inference_scheduler, load_pipeline, sample

    try:
        _check(args)
        pipe = load_pipeline(args.pipeline)
        if args.scheduler:
            pipe.scheduler = inference_scheduler(pipe.scheduler.config, args.scheduler)
        images = sample(
            pipe,
            [args.prompt] * args.num_images,
            [args.seed + i for i in range(args.num_images)],
            steps=args.steps,
            guidance=args.guidance,
            guidance_rescale=args.guidance_rescale,
            batch_size=args.batch_size,
            size=args.size,
            desc="generate",
        )
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.output), tile(images)):
        print(f"error: could not write {args.output}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({args.num_images} image(s), {images.shape[2]}x{images.shape[1]} px each)")
    return 0
