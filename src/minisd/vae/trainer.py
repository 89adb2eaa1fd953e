"""Train (or fine-tune) the AutoencoderKL on the sketch shards; resumable, budgeted, logged with DVCLive.

One loop for both cases: `vae.source: scratch` trains the small offline VAE from its seed,
`vae.source: pretrained` fine-tunes e.g. sd-vae-ft-mse (optionally only its decoder, which keeps
the latent space of the original). Random crops train fast; validation is always on full images.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
from diffusers.training_utils import EMAModel
from dvclive import Live
from torch import nn
from tqdm.auto import tqdm

from minisd import paths
from minisd.components import ComponentError, load_vae
from minisd.config import VaeParams
from minisd.shards import load_images
from minisd.stage import StageError
from minisd.training.checkpoints import CheckpointManager, fingerprint_inputs
from minisd.training.guards import check_finite
from minisd.training.precision import make_accelerator
from minisd.training.schedule import make_lr_scheduler, WallClockBudget
from minisd.vae.data import ImageBank
from minisd.vae.losses import VaeLoss
from minisd.vae.validation import evaluate, latent_scaling_factor, reconstruction_grid

log = logging.getLogger("minisd.vae")
GRID_SAMPLES = 16  # first val images, shown over their reconstructions


class VaeForward(nn.Module):
    """encode -> sample -> decode as one forward, so DDP sees (and syncs) the whole graph."""

    def __init__(self, vae, decoder_only: bool):
        super().__init__()
        self.vae, self.decoder_only = vae, decoder_only

    def forward(self, x: torch.Tensor):
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.decoder_only):
            dist = self.vae.encode(x).latent_dist
        recon = self.vae.decode(dist.sample()).sample
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


class _Validator:
    """Full-size validation with the EMA weights when there are any; main process only."""

    def __init__(self, accelerator, vae, ema, params: VaeParams, val_images: np.ndarray):
        self.accelerator, self.vae, self.ema = accelerator, vae, ema
        self.images, self.batch_size = val_images, max(params.batch_size, 8)

    def __call__(self, trainable) -> tuple[dict, np.ndarray]:
        was_training = self.vae.training
        self.vae.eval()
        if self.ema is not None:
            self.ema.store(trainable)
            self.ema.copy_to(trainable)
        try:
            metrics, recon = evaluate(self.vae, self.images, self.batch_size, self.accelerator.autocast)
        finally:
            if self.ema is not None:
                self.ema.restore(trainable)
            self.vae.train(was_training)
        grid = reconstruction_grid(self.images[:GRID_SAMPLES], recon[:GRID_SAMPLES])
        return metrics, grid


def train_vae(
    params: VaeParams,
    shards_dir: Path | str = paths.SHARDS,
    model_dir: Path | str = paths.VAE,
    live_dir: Path | str = paths.VAE_LIVE,
    checkpoint_root: Path | str = paths.CHECKPOINTS,
) -> dict:
    """Train, save `model_dir` (diffusers format, measured scaling_factor) and return final metrics."""
    model_dir, live_dir = Path(model_dir), Path(live_dir)
    torch.set_flush_denormal(True)  # ~20% faster fp32 on CPU; tiny activations lose nothing that matters
    accelerator = make_accelerator(params.mixed_precision)
    main = accelerator.is_main_process
    seed = params.seed + accelerator.process_index  # each process draws its own batches
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    _, train_images = load_images(shards_dir, "train")
    _, val_images = load_images(shards_dir, "val")
    if len(train_images) == 0 or len(val_images) == 0:
        raise StageError(f"{shards_dir}: the train and val shards must both hold images")
    val_images = val_images[: params.val_samples]

    vae = load_vae(params)
    _check_sizes(params, vae, train_images.shape[-1])
    vae.train()
    trainable = _trainable(vae, params.decoder_only)
    bank = ImageBank(train_images, vae.config.in_channels)
    loss_fn = VaeLoss(params.loss).to(accelerator.device)
    optimizer = torch.optim.AdamW(trainable, lr=params.lr, weight_decay=0.0)
    lr_scheduler = make_lr_scheduler(optimizer, params.lr_schedule, params.warmup_steps, params.max_steps)
    ema = EMAModel(trainable, decay=params.ema_decay) if params.ema_decay else None
    model, optimizer = accelerator.prepare(VaeForward(vae, params.decoder_only), optimizer)
    if ema is not None:
        ema.to(accelerator.device)

    fingerprint = {"params": params.model_dump(mode="json"), "inputs": fingerprint_inputs([Path(shards_dir)]),
                   "processes": accelerator.num_processes}
    checkpoints = CheckpointManager("train_vae", fingerprint, params.checkpoints_keep, checkpoint_root, accelerator)
    state = {"model": vae, "ema": ema, "optimizer": optimizer, "lr_scheduler": lr_scheduler}
    restored = checkpoints.restore(state, files={"live": live_dir})
    step, extra = restored if restored else (0, {})
    spent = float(extra.get("minutes", 0.0))  # the budget covers all attempts, not each one

    live = Live(str(live_dir), resume=restored is not None, dvcyaml=None, save_dvc_exp=False) if main else None
    validate = _Validator(accelerator, vae, ema, params, val_images)
    budget = WallClockBudget(None if params.max_minutes is None else max(params.max_minutes - spent, 0.0))
    per_step = params.batch_size * accelerator.num_processes
    window: dict[str, float] = {}
    bar = tqdm(total=params.max_steps, initial=step, desc="train_vae", unit="step", disable=not main)
    started, start_step = time.perf_counter(), step

    while step < params.max_steps and not _stop(budget, accelerator):
        # Crops are ~4x cheaper per image, but GroupNorm sees different statistics on a whole,
        # mostly blank page, which leaves a grey cast there; a few full-size steps at the end remove it.
        crop = None if step >= params.max_steps - params.full_size_steps else params.crop_size
        x = bank.batch(params.batch_size, crop).to(accelerator.device)
        with accelerator.autocast():
            recon, kl = model(x)
        loss, parts = loss_fn(recon, x, kl)
        check_finite(loss, step + 1)
        accelerator.backward(loss)
        if params.grad_clip is not None:
            accelerator.clip_grad_norm_(trainable, params.grad_clip)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.step(trainable)
        step += 1

        for name, value in {"loss": float(loss.detach()), **parts}.items():
            window[name] = window.get(name, 0.0) + value
        window["n"] = window.get("n", 0) + 1
        rate = per_step * (step - start_step) / max(time.perf_counter() - started, 1e-9)
        bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{rate:.1f}", refresh=False)
        bar.update(1)
        if step % params.log_every == 0 or step == params.max_steps:
            n = window.pop("n")
            if main:  # the main process's running means; other processes see other batches
                live.step = step
                for name, total in window.items():
                    live.log_metric(f"train/{name}", total / n)
                live.log_metric("train/lr", lr_scheduler.get_last_lr()[0])
                live.make_summary()
            window.clear()
        if step % params.val_every == 0 and step < params.max_steps:
            _validate_and_log(validate, trainable, live, step, accelerator)
        if step % params.checkpoint_every == 0 and step < params.max_steps:
            extra = {"step": step, "minutes": spent + budget.elapsed_minutes()}
            checkpoints.save(step, state, extra=extra, files={"live": live_dir} if main else None)
    bar.close()
    if step < params.max_steps:
        log.info("wall-clock budget of %s min reached at step %d of %d", params.max_minutes, step, params.max_steps)

    metrics = _finish(params, accelerator, vae, ema, trainable, train_images, validate, live, step, model_dir)
    checkpoints.clear()
    return metrics


def _stop(budget: WallClockBudget, accelerator) -> bool:
    """Every process stops at the same step, or DDP would hang waiting for the others."""
    stop = budget.exhausted()
    if accelerator.num_processes > 1:
        flag = torch.tensor([float(stop)], device=accelerator.device)
        stop = bool(accelerator.reduce(flag, reduction="sum").item() > 0)
    return stop


def _validate_and_log(validate: _Validator, trainable, live, step: int, accelerator) -> dict:
    metrics = {}
    if accelerator.is_main_process:
        metrics, grid = validate(trainable)
        live.step = step
        for name, value in metrics.items():
            live.log_metric(f"val/{name}", value)
        live.log_image("reconstructions.png", grid)
        live.make_summary()
        log.info("step %d: val %s", step, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    accelerator.wait_for_everyone()
    return metrics


def _finish(params, accelerator, vae, ema, trainable, train_images, validate, live, step, model_dir: Path) -> dict:
    """EMA weights in, measured scaling factor in the config, save, final validation on full images."""
    if ema is not None:
        ema.copy_to(trainable)
    metrics = {}
    if accelerator.is_main_process:
        vae.eval()
        factor = latent_scaling_factor(vae, train_images, seed=params.seed, autocast=accelerator.autocast)
        vae.register_to_config(scaling_factor=round(factor, 5), sample_size=int(train_images.shape[-1]))
        vae.save_pretrained(model_dir, safe_serialization=True)
        ema, validate.ema = None, None  # the EMA weights are in the model now
        metrics = _validate_and_log(validate, trainable, live, step, accelerator)
        live.log_metric("scaling_factor", round(factor, 5), plot=False)
        live.log_metric("steps", step, plot=False)
        live.end()
        metrics = {**metrics, "scaling_factor": round(factor, 5), "steps": step}
        log.info("saved %s (scaling_factor %.5f)", model_dir, factor)
    else:
        accelerator.wait_for_everyone()
    return metrics
