"""The text-to-sketch pipeline (the diffusers one, not the DVC stages): build, export, load, sample.

There is no custom pipeline class on purpose: Mini-SD exports a stock diffusers
`StableDiffusionPipeline` (tokenizer, text encoder, VAE, UNet, scheduler; no safety checker), so
`StableDiffusionPipeline.from_pretrained("models/pipeline")` works with no project code installed.
`MiniDiffusionPipeline`, the seed project's name, only gathers the ways to get one (the functions
below, under the seed's names):

    pipe = MiniDiffusionPipeline.from_pretrained("models/pipeline")   # the exported folder
    pipe = MiniDiffusionPipeline.from_model_dirs("models")            # the stages' separate outputs
    pipe = MiniDiffusionPipeline.from_components(tokenizer, text_encoder, vae, unet, scheduler)
    images = pipe("a small star in the top left", num_inference_steps=20).images
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
)
from tqdm import tqdm

from minisd import paths
from minisd.imagegrid import to_uint8
from minisd.stage import StageError

SCHEDULERS = {
    "dpmsolver++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    "ddim": (DDIMScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "ddpm": (DDPMScheduler, {}),
}


def inference_scheduler(training_config, kind: str = "dpmsolver++"):
    """A sampler built from the training scheduler's config, so betas and prediction_type match."""
    if kind not in SCHEDULERS:
        raise StageError(f"unknown scheduler {kind!r}; choose one of {', '.join(SCHEDULERS)}")
    cls, overrides = SCHEDULERS[kind]
    return cls.from_config(training_config, **overrides)


def build_pipeline(tokenizer, text_encoder, vae, unet, scheduler) -> StableDiffusionPipeline:
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _require(folder: Path, what: str, stage: str) -> Path:
    if not folder.is_dir() or not any(folder.iterdir()):
        raise StageError(f"no {what} at {folder} (run `dvc repro {stage}` or `dvc pull`)")
    return folder


def pipeline_from_model_dirs(models_dir: str | Path = paths.MODELS, scheduler: str = "dpmsolver++") -> StableDiffusionPipeline:
    """The pipeline from the stages' separate model folders (models/tokenizer, .../unet, ...)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    models = Path(models_dir)
    training = DDPMScheduler.from_pretrained(_require(models / "scheduler", "training scheduler", "train_unet"))
    return build_pipeline(
        tokenizer=CLIPTokenizer.from_pretrained(_require(models / "tokenizer", "tokenizer", "train_clip")),
        text_encoder=CLIPTextModel.from_pretrained(_require(models / "text_encoder", "text encoder", "train_clip")),
        vae=AutoencoderKL.from_pretrained(_require(models / "vae", "VAE", "train_vae")),
        unet=UNet2DConditionModel.from_pretrained(_require(models / "unet", "UNet", "train_unet")),
        scheduler=inference_scheduler(training.config, scheduler),
    )


def export_pipeline(models_dir: str | Path, out_dir: str | Path, scheduler: str = "dpmsolver++") -> Path:
    """Write the stock diffusers folder (safetensors) that `generate` and outside users load."""
    out_dir = Path(out_dir)
    pipeline_from_model_dirs(models_dir, scheduler).save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def load_pipeline(path: str | Path = paths.PIPELINE, device: str | torch.device | None = None) -> StableDiffusionPipeline:
    """The exported folder on the accelerate-chosen device (a GPU when present), fp32, quiet."""
    path = Path(path)
    if not (path / "model_index.json").is_file():
        raise StageError(
            f"no exported pipeline at {path}: run `dvc repro` (or `dvc pull` to fetch a trained one)"
        )
    try:  # safetensors only: a folder missing its weights fails here instead of falling back to pickles
        pipe = StableDiffusionPipeline.from_pretrained(path, use_safetensors=True)
    except (OSError, ValueError) as error:
        raise StageError(
            f"the pipeline at {path} is incomplete or damaged ({error}): rerun `dvc repro evaluate` (or `dvc pull`)"
        ) from None
    pipe.to(device or PartialState().device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def output_to_gray(images: np.ndarray) -> np.ndarray:
    """Pipeline output (N, H, W, C) floats in [0, 1] -> uint8 (N, H, W) sketches."""
    gray = images[..., 0] if images.shape[-1] == 1 else images[..., :3].mean(axis=-1)
    return to_uint8(gray, low=0.0)


@torch.no_grad()
def sample(
    pipe: StableDiffusionPipeline,
    prompts: list[str] | torch.Tensor,
    seeds: list[int],
    steps: int,
    guidance: float,
    batch_size: int = 16,
    size: int | None = None,
    desc: str | None = "sampling",
    negative: torch.Tensor | None = None,
    guidance_rescale: float = 0.0,
) -> np.ndarray:
    """uint8 (N, H, W) sketches, image i from prompts[i] with its own generator seeded seeds[i].

    prompts: captions, or their text-encoder states (N, tokens, hidden) as the text cache holds
    them, with `negative` the empty prompt's states (tokens, hidden) for the guidance; a pipeline
    sampling from states needs no tokenizer or text encoder. desc None: no progress bar.

    One generator per image makes each sample depend only on its prompt and seed, not on which
    batch it landed in, so evaluation grids and the generate command agree.
    """
    if len(prompts) != len(seeds):
        raise ValueError("one seed per prompt")
    out = []
    with tqdm(total=len(prompts), desc=desc, unit="img", mininterval=2, disable=desc is None) as bar:
        for i in range(0, len(prompts), batch_size):
            chunk = slice(i, i + batch_size)
            if isinstance(prompts, torch.Tensor):
                text = {"prompt_embeds": prompts[chunk], "negative_prompt_embeds": negative.expand_as(prompts[chunk])}
            else:
                text = {"prompt": prompts[chunk]}
            generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds[chunk]]
            result = pipe(
                **text,
                num_inference_steps=steps,
                guidance_scale=guidance,
                guidance_rescale=guidance_rescale,
                generator=generators,
                height=size,
                width=size,
                output_type="np",
            )
            out.append(output_to_gray(result.images))
            bar.update(len(generators))
    return np.concatenate(out) if out else np.zeros((0, 0, 0), np.uint8)


class MiniDiffusionPipeline:
    """The seed's entry point, kept as a namespace: every way of making one returns a stock
    `StableDiffusionPipeline`, so there is never a MiniDiffusionPipeline instance.

    Where the seed called the constructor with components, call `from_components` (`build_pipeline`).
    """

    from_pretrained = staticmethod(load_pipeline)
    from_model_dirs = staticmethod(pipeline_from_model_dirs)
    from_components = staticmethod(build_pipeline)
    export = staticmethod(export_pipeline)
    sample = staticmethod(sample)

    def __init__(self, *args, **kwargs):
        raise TypeError("MiniDiffusionPipeline makes no instances: use MiniDiffusionPipeline.from_components(...) "
                        "(or build_pipeline), which returns a StableDiffusionPipeline")
