"""Train (or fine-tune) the AutoencoderKL on the sketch shards: a Trainer run by training.loop.fit.

One loop for both cases: `vae.source: scratch` trains the small offline VAE from its seed,
`vae.source: pretrained` fine-tunes e.g. sd-vae-ft-mse (optionally only its decoder, which keeps
the latent space of the original). Random crops train fast; validation is always on full images.
Optional `decoder_steps` at the end train only the decoder, on noisy latents: the UNet's latents
lie off the encoder's manifold (a grey haze around generated drawings), and the latent space, so
the latent cache and the UNet, stay exactly as without them.
Each step's crops and posterior noise come from `seeded_generator(seed, step, rank)`, as in every trainer.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from diffusers.training_utils import EMAModel
from diffusers.utils.torch_utils import randn_tensor
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from minisd import paths
from minisd.components import ComponentError
from minisd.vae.model import load_vae
from minisd.params.vae import VaeParams
from minisd.shards import load_images
from minisd.stage import StageError
from minisd.training.checkpoints import CheckpointManager
from minisd.training.loop import Schedule, check_finite, fit
from minisd.training.optim import adamw, ema_weights, evaluating, make_lr_scheduler
from minisd.training.precision import make_accelerator
from minisd.training.rng import seeded_generator
from minisd.vae.data import ImageBank
from minisd.vae.losses import VaeLoss
from minisd.vae.validation import latent_scaling_factor, reconstruction_grid, score_reconstructions

log = logging.getLogger("minisd.vae")
GRID_SAMPLES = 16  # first val images, shown over their reconstructions


class VaeForward(nn.Module):
    """encode -> sample -> decode as one forward, so DDP sees (and syncs) the whole graph."""

    def __init__(self, vae, decoder_only: bool):
        super().__init__()
        self.vae, self.decoder_only = vae, decoder_only

    def forward(self, x: torch.Tensor, generator: torch.Generator, latent_noise: float | None = None):
        """latent_noise: the decoder phase. The encoder runs without gradients, and each sampled latent
        gets Gaussian noise of a scale drawn from U(0, latent_noise) (raw latent units)."""
        frozen = self.decoder_only or latent_noise is not None
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            dist = self.vae.encode(x).latent_dist
        latents = dist.sample(generator)
        if latent_noise:
            scale = latent_noise * torch.rand((len(x), 1, 1, 1), generator=generator).to(latents)
            latents = latents + scale * randn_tensor(latents.shape, generator=generator, device=latents.device,
                                                     dtype=latents.dtype)
        recon = self.vae.decode(latents).sample
        mean, logvar = dist.mean.float(), dist.logvar.float()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=(1, 2, 3))
        return recon, kl


def _check_sizes(params: VaeParams, vae, image_size: int) -> None:
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    if image_size % factor:
        raise ComponentError(
            f"vae.block_out_channels: {len(vae.config.block_out_channels)} blocks downsample by {factor}, "
            f"which does not divide the image size {image_size}"
        )
    if params.crop_size is not None and (params.crop_size > image_size or params.crop_size % factor):
        raise StageError(
            f"vae.crop_size: {params.crop_size} must be <= the image size {image_size} and a multiple of "
            f"the VAE's downsampling factor {factor} (or null for full images)"
        )


def _trainable(vae, decoder_only: bool) -> list[nn.Parameter]:
    if decoder_only:  # the encoder (and so the latent space) stays exactly as loaded
        vae.encoder.requires_grad_(False)
        if vae.quant_conv is not None:
            vae.quant_conv.requires_grad_(False)
    return [p for p in vae.parameters() if p.requires_grad]


def with_decoder_phase(scheduler: LambdaLR, params: VaeParams) -> LambdaLR:
    """The main schedule for `max_steps`, then `decoder_lr` for the decoder phase (the same optimizer,
    so the main phase's rates, and so its weights, are exactly those of a run without the phase)."""
    main, factor = scheduler.lr_lambdas[0], params.decoder_lr / params.lr
    return LambdaLR(scheduler.optimizer, lambda step: main(step) if step < params.max_steps else factor)


class VaeTrainer:
    """Reconstruction + KL on random crops (whole images for the last `full_size_steps`), optional EMA,
    then `decoder_steps` of the decoder alone on whole pages and noisy latents."""

    def __init__(self, params: VaeParams, vae, train_images: np.ndarray, val_images: np.ndarray, accelerator,
                 model_dir: Path):
        self.params, self.vae, self.accelerator, self.model_dir = params, vae, accelerator, model_dir
        self.train_images, self.val_images = train_images, val_images
        vae.train()
        self.trainable = _trainable(vae, params.decoder_only)
        self.bank = ImageBank(train_images, vae.config.in_channels)
        self.loss_fn = VaeLoss(params.loss).to(accelerator.device)
        optimizer = adamw(self.trainable, lr=params.lr)
        self.lr_scheduler = make_lr_scheduler(optimizer, params.lr_schedule, params.warmup_steps, params.max_steps)
        if params.decoder_steps:
            self.lr_scheduler = with_decoder_phase(self.lr_scheduler, params)
        self.raw_per_scaled: float | None = None  # latent units; measured once the encoder is final
        self.ema = EMAModel(self.trainable, decay=params.ema_decay) if params.ema_decay else None
        self.model, self.optimizer = accelerator.prepare(VaeForward(vae, params.decoder_only), optimizer)
        if self.ema is not None:
            self.ema.to(accelerator.device)

    def state(self) -> dict:
        return {"model": self.vae, "ema": self.ema, "optimizer": self.optimizer, "lr_scheduler": self.lr_scheduler}

    def step(self, step: int) -> dict[str, float]:
        params = self.params
        # Crops are ~4x cheaper per image, but GroupNorm sees different statistics on a whole,
        # mostly blank page, which leaves a grey cast there; a few full-size steps at the end remove it.
        crop = None if step >= params.max_steps - params.full_size_steps else params.crop_size
        decoder_phase = step >= params.max_steps  # whole pages too
        # in scaled units (the UNet's), so one setting means the same for every VAE
        noise = params.decoder_noise * self.latent_unit() if decoder_phase else None
        generator = seeded_generator(params.seed, step, self.accelerator.process_index)
        x = self.bank.batch(params.batch_size, generator, crop).to(self.accelerator.device)
        with self.accelerator.autocast():
            recon, kl = self.model(x, generator, noise)
        loss, parts = self.loss_fn(recon, x, None if decoder_phase else kl)
        check_finite(loss, step + 1)
        self.accelerator.backward(loss)
        if params.grad_clip is not None:
            self.accelerator.clip_grad_norm_(self.trainable, params.grad_clip)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.step(self.trainable)
        return {"loss": float(loss.detach()), **parts}

    def log_extras(self, step: int) -> dict[str, float]:
        return {}

    def validate(self, step: int, live, final: bool) -> dict[str, float]:
        """PSNR, SSIM and ink F1 on full-size val images, with the EMA weights (the ones exported)."""
        images = self.val_images
        with evaluating(self.vae), ema_weights(self.ema, self.trainable):
            metrics, recon = score_reconstructions(self.vae, images, autocast=self.accelerator.autocast)
        live.image(step, "reconstructions", reconstruction_grid(images[:GRID_SAMPLES], recon[:GRID_SAMPLES]),
                   series=False)
        log.info("step %d: val %s", step, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        return {f"val/{name}": value for name, value in metrics.items()}

    def latent_unit(self) -> float:
        """One scaled latent unit (the UNet's) in raw latent units: 1 / the scaling factor of the encoder,
        measured once the decoder phase starts (the encoder no longer changes then)."""
        if self.raw_per_scaled is None:
            with evaluating(self.vae):
                self.raw_per_scaled = 1.0 / latent_scaling_factor(self.vae, self.train_images, seed=self.params.seed,
                                                                  autocast=self.accelerator.autocast)
        return self.raw_per_scaled

    def export(self, step: int) -> dict:
        """EMA weights in, the latent scaling factor measured on them into the config, then saved."""
        if self.ema is not None:
            self.ema.copy_to(self.trainable)
        self.vae.eval()
        factor = round(latent_scaling_factor(self.vae, self.train_images, seed=self.params.seed,
                                             autocast=self.accelerator.autocast), 5)
        self.vae.register_to_config(scaling_factor=factor, sample_size=int(self.train_images.shape[-1]))
        self.vae.save_pretrained(self.model_dir, safe_serialization=True)
        log.info("saved %s (scaling_factor %.5f)", self.model_dir, factor)
        return {"scaling_factor": factor, "steps": step}


def train_vae(
    params: VaeParams,
    shards_dir: Path | str = paths.SHARDS,
    model_dir: Path | str = paths.VAE,
    live_dir: Path | str = paths.VAE_LIVE,
    checkpoint_root: Path | str = paths.CHECKPOINTS,
) -> dict:
    """Train, save `model_dir` (diffusers format, measured scaling_factor) and return final metrics."""
    # the decoder phase leaves the encoder without gradients, which DDP must be told
    accelerator = make_accelerator(params.mixed_precision, find_unused_parameters=params.decoder_steps > 0)
    _, train_images = load_images(shards_dir, "train")
    _, val_images = load_images(shards_dir, "val")
    if len(train_images) == 0 or len(val_images) == 0:
        raise StageError(f"{shards_dir}: the train and val shards must both hold images")
    vae = load_vae(params)
    _check_sizes(params, vae, train_images.shape[-1])
    trainer = VaeTrainer(params, vae, train_images, val_images[: params.val_samples], accelerator, Path(model_dir))

    checkpoints = CheckpointManager.for_stage("train_vae", {"params": params.model_dump(mode="json")},
                                              [Path(shards_dir)], params.checkpoints_keep, accelerator, checkpoint_root)
    schedule = Schedule.from_params(params, params.batch_size * accelerator.num_processes)
    schedule.max_steps += params.decoder_steps
    return fit(trainer, schedule, accelerator, checkpoints, live_dir, "train_vae").metrics
