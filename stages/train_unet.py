"""train_unet: a text-conditioned UNet trained from scratch on the cached latents and captions.

Resumes step-exactly from .checkpoints/ after an interruption; runs under `accelerate launch`
when MINISD_ACCELERATE_ARGS is set (see minisd.stage).
"""

import torch
from diffusers import AutoencoderKL

from minisd import paths
from minisd.config import load_params
from minisd.stage import main
from minisd.training.checkpoints import CheckpointManager, fingerprint_inputs
from minisd.training.precision import make_accelerator
from minisd.unet.inputs import load_inputs, preview_prompts
from minisd.unet.trainer import Outputs, Preview, train_unet


def run() -> None:
    params = load_params().unet
    accelerator = make_accelerator(params.mixed_precision, params.gradient_accumulation_steps)
    text, train, val, scaling_factor = load_inputs(paths.TEXT_CACHE, paths.LATENT_CACHE, paths.VAE)
    inputs = [paths.TEXT_CACHE, paths.LATENT_CACHE]
    fingerprint = {"unet": params.model_dump(), "inputs": fingerprint_inputs(inputs),
                   "processes": accelerator.num_processes}
    checkpoints = CheckpointManager("train_unet", fingerprint, params.checkpoints_keep, accelerator=accelerator)

    preview = None
    _, cond = preview_prompts(text, params.sample_prompts)
    if cond is not None and accelerator.is_main_process:
        vae = AutoencoderKL.from_pretrained(paths.VAE).to(accelerator.device).eval().requires_grad_(False)
        uncond = text.embeddings[text.empty_row].float()
        preview = Preview(vae, scaling_factor, cond, uncond, list(range(params.sample_seeds)), params.sample_steps,
                          params.sample_guidance)

    outputs = Outputs(paths.UNET, paths.SCHEDULER, paths.UNET_LIVE)
    torch.manual_seed(params.seed)
    train_unet(params, train, val, outputs, accelerator=accelerator, checkpoints=checkpoints, preview=preview)


if __name__ == "__main__":
    main(run, __file__, distributed=True)
