"""The UNet trainer: cached latents + caption states in, EMA weights out; run by training.loop.fit.

Single device, DDP under `accelerate launch`, or multi-node: the loop is the same. Each process
reads its own slice of the seeded data stream; the main process validates, draws preview grids,
logs, checkpoints and exports. A checkpoint holds everything needed to continue step-exactly.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from diffusers import UNet2DConditionModel
from diffusers.training_utils import EMAModel

from minisd import paths
from minisd.components import seeded
from minisd.unet.model import build_unet
from minisd.params.unet import UnetParams
from minisd.stage import StageError
from minisd.training.attention import train_with_fast_attention
from minisd.training.checkpoints import CheckpointManager
from minisd.training.loop import Schedule, check_finite, fit
from minisd.training.optim import adamw, ema_weights, evaluating, make_lr_scheduler
from minisd.training.precision import make_accelerator
from minisd.unet.data import CaptionedLatents, DataOrder, seeded_generator
from minisd.unet.diffusion import diffusion_loss, draw_noise, ink_weights, make_noise_scheduler
from minisd.unet.inputs import load_inputs
from minisd.unet.repa import BottleneckAlignment, teacher_embeddings
from minisd.unet.preview import Preview, load_preview, preview_grid
from minisd.unet.validation import FixedValidation

log = logging.getLogger("minisd.unet")


@dataclass
class Outputs:
    unet_dir: Path = paths.UNET
    scheduler_dir: Path = paths.SCHEDULER
    live_dir: Path = paths.UNET_LIVE


@dataclass
class TrainResult:
    metrics: dict  # final val losses (main process)
    step: int  # optimizer steps done (< max_steps when the wall-clock budget stopped the run)
    raw_state: dict | None  # the raw (non-EMA) weights at the end, main process only


class UnetTrainer:
    """The denoising objective on cached latents, EMA with warmup, optional gradient accumulation.

    on_batch(step, indices, rows) and on_step(step, raw_model) are observation hooks for tests.
    """

    def __init__(self, params: UnetParams, train: CaptionedLatents, val: CaptionedLatents | None, outputs: Outputs,
                 accelerator, preview: Preview | None = None, on_batch: Callable | None = None,
                 on_step: Callable | None = None, teacher: torch.Tensor | None = None):
        self.params, self.train, self.outputs, self.accelerator = params, train, outputs, accelerator
        self.preview, self.on_batch, self.on_step = preview, on_batch, on_step
        device = accelerator.device
        if params.sample_size != train.latent_shape[-1]:
            raise StageError(f"unet.sample_size is {params.sample_size} but the cached latents are "
                             f"{train.latent_shape[-1]} wide; set unet.sample_size: {train.latent_shape[-1]}")
        unet = build_unet(params, cross_attention_dim=train.embeddings.shape[-1], latent_channels=train.latent_shape[0])
        unet.train()
        train_with_fast_attention(unet, accelerator)
        self.layout = torch.channels_last if params.channels_last else torch.contiguous_format
        unet.to(memory_format=self.layout)
        self.ema = EMAModel(unet.parameters(), decay=params.ema_decay, use_ema_warmup=True, inv_gamma=1.0,
                            power=params.ema_power, foreach=True, model_cls=UNet2DConditionModel,
                            model_config=unet.config)
        self.teacher, repa = teacher, None
        if params.repa_weight:
            if teacher is None or len(teacher) != len(train):
                raise StageError(f"unet.repa_weight is {params.repa_weight} but no teacher embedding per train sample "
                                 f"was given ({0 if teacher is None else len(teacher)} for {len(train)})")
            with seeded(params.seed):
                repa = BottleneckAlignment(unet, teacher.shape[-1], params.repa_blocks)
        trained = list(unet.parameters()) + (list(repa.parameters()) if repa else [])
        optimizer = adamw(trained, lr=params.lr, weight_decay=params.weight_decay)
        self.lr_scheduler = make_lr_scheduler(optimizer, params.lr_schedule, params.warmup_steps, params.max_steps)
        if repa:
            self.unet, self.repa, self.optimizer = accelerator.prepare(unet, repa, optimizer)
        else:
            (self.unet, self.optimizer), self.repa = accelerator.prepare(unet, optimizer), None
        self.trained, self.models = trained, (self.unet, self.repa) if self.repa else (self.unet,)
        self.ema.to(device=device)
        self.raw = accelerator.unwrap_model(self.unet)
        self.noise_scheduler = make_noise_scheduler(params.noise_scheduler)
        self.num_timesteps = self.noise_scheduler.config.num_train_timesteps
        self.validation = FixedValidation(val, self.num_timesteps, params.val_samples, params.batch_size) if val else None
        # per-sample position weights, on the device once like the REPA teacher (indexed per batch)
        self.ink = ink_weights(train.mean, params.ink_weight).to(device) if params.ink_weight else None
        self.order = DataOrder(len(train), params.batch_size, params.seed, accelerator.num_processes,
                               accelerator.process_index)
        self.val_loss: float | None = None  # the latest EMA val loss, for metrics.json
        self.raw_state: dict | None = None

    def state(self) -> dict:
        state = {"model": self.unet, "ema": self.ema, "optimizer": self.optimizer, "lr_scheduler": self.lr_scheduler}
        return state | ({"repa": self.repa} if self.repa else {})

    def step(self, step: int) -> dict[str, float]:
        params, accelerator, device = self.params, self.accelerator, self.accelerator.device
        gas = params.gradient_accumulation_steps
        totals = torch.zeros(2 if self.repa else 1, device=device)  # denoising (and REPA) loss, micro-batch mean
        for micro in range(gas):
            micro_step = step * gas + micro
            indices = self.order.indices(micro_step)
            generator = seeded_generator(params.seed, micro_step, accelerator.process_index)
            latents, cond, rows = self.train.batch(indices, generator, params.caption_dropout)
            noise, timesteps = draw_noise(latents, generator, self.num_timesteps, params.noise_offset,
                                          params.timestep_power)
            if self.on_batch:
                self.on_batch(step, indices, rows)
            with accelerator.accumulate(*self.models):
                loss = diffusion_loss(self.unet, self.noise_scheduler, latents.to(device, memory_format=self.layout),
                                      cond.to(device), noise.to(device, memory_format=self.layout),
                                      timesteps.to(device), params.snr_gamma,
                                      None if self.ink is None else self.ink[indices])
                parts = [loss]
                if self.repa:  # logged apart, so train/loss stays the denoising loss of runs without it
                    parts.append(self.repa(self.teacher[indices]))
                    loss = loss + params.repa_weight * parts[1]
                means = accelerator.reduce(torch.stack(parts).detach().float(), "mean")
                check_finite(means, step + 1, f"micro-batch {micro_step}" + (" (denoising, REPA)" if self.repa else ""))
                accelerator.backward(loss)
                if accelerator.sync_gradients and params.grad_clip:
                    accelerator.clip_grad_norm_(self.trained, params.grad_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            totals += means / gas
        self.lr_scheduler.step()
        self.ema.step(self.raw.parameters())
        if self.on_step:
            self.on_step(step + 1, self.raw)
        return dict(zip(("loss", "repa_loss"), totals.tolist()))

    def log_extras(self, step: int) -> dict[str, float]:
        return {"epoch": self.order.epoch_of(step * self.params.gradient_accumulation_steps)}

    def validate(self, step: int, live, final: bool) -> dict[str, float]:
        """Val loss of the EMA weights (the exported ones) and of the raw ones; a preview grid with the EMA's."""
        params, metrics = self.params, {}
        with evaluating(self.raw):
            with ema_weights(self.ema, self.raw.parameters()):
                if self.validation and (final or step % params.val_every == 0):
                    metrics["val/loss"] = self.val_loss = self._val_loss()
                if self.preview and (final or step % params.sample_every == 0):
                    live.image(step, "samples", preview_grid(self.raw, self.noise_scheduler, self.preview))
            if metrics:
                metrics["val/loss_raw"] = self._val_loss()
        return metrics

    def _val_loss(self) -> float:
        return self.validation.loss(self.raw, self.noise_scheduler, self.accelerator.device, self.accelerator.autocast)

    def export(self, step: int) -> dict:
        """The EMA weights (the raw ones kept in `raw_state`) and the training scheduler's config."""
        self.raw_state = {k: v.detach().cpu().clone() for k, v in self.raw.state_dict().items()}
        self.ema.copy_to(self.raw.parameters())
        for folder in (self.outputs.unet_dir, self.outputs.scheduler_dir):
            shutil.rmtree(folder, ignore_errors=True)
        self.raw.save_pretrained(self.outputs.unet_dir, safe_serialization=True)
        self.noise_scheduler.save_pretrained(self.outputs.scheduler_dir)
        log.info("saved %s and %s (EMA weights, step %d)", self.outputs.unet_dir, self.outputs.scheduler_dir, step)
        return {"final_val_loss": self.val_loss} if self.val_loss is not None else {}


def fit_unet(params: UnetParams, train: CaptionedLatents, val: CaptionedLatents | None, outputs: Outputs, *,
             accelerator, checkpoints: CheckpointManager | None = None, preview: Preview | None = None,
             on_batch: Callable | None = None, on_step: Callable | None = None,
             teacher: torch.Tensor | None = None) -> TrainResult:
    """Train on in-memory splits; export the EMA weights + scheduler config to `outputs`.

    teacher: (len(train), D) CLIP image embeddings of the train sketches, needed when `unet.repa_weight` > 0.
    """
    trainer = UnetTrainer(params, train, val, outputs, accelerator, preview, on_batch, on_step, teacher)
    schedule = Schedule.from_params(
        params, params.batch_size * params.gradient_accumulation_steps * accelerator.num_processes,
        sample_every=params.sample_every)
    result = fit(trainer, schedule, accelerator, checkpoints, outputs.live_dir, "train_unet")
    return TrainResult(result.metrics, result.step, trainer.raw_state)


def train_unet(params: UnetParams, text_dir: Path = paths.TEXT_CACHE, latent_dir: Path = paths.LATENT_CACHE,
               vae_dir: Path = paths.VAE, outputs: Outputs = Outputs(),
               checkpoint_root: Path = paths.CHECKPOINTS, clip_dir: Path = paths.CLIP,
               shards_dir: Path = paths.SHARDS) -> dict:
    """The stage: caches in (checked against the VAE that made them), checkpoints keyed by the params
    and the caches' contents, previews decoded by that VAE; then `fit_unet`."""
    accelerator = make_accelerator(params.mixed_precision, params.gradient_accumulation_steps)
    text, train, val, _ = load_inputs(text_dir, latent_dir, vae_dir)
    checkpoints = CheckpointManager.for_stage("train_unet", {"unet": params.model_dump()}, [text_dir, latent_dir],
                                              params.checkpoints_keep, accelerator, checkpoint_root)
    preview = load_preview(params, text, vae_dir, accelerator.device) if accelerator.is_main_process else None
    teacher = teacher_embeddings(clip_dir, shards_dir, train.keys, accelerator.device) if params.repa_weight else None
    torch.manual_seed(params.seed)  # nothing in training draws from the global RNG; seeded all the same
    return fit_unet(params, train, val, outputs, accelerator=accelerator, checkpoints=checkpoints,
                    preview=preview, teacher=teacher).metrics
