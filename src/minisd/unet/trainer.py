"""The UNet training loop: cached latents + caption embeddings in, EMA weights out.

Single device, DDP under `accelerate launch`, or multi-node: the loop is the same. Each process
reads its own slice of the seeded data stream; the main process validates, draws preview grids,
logs, checkpoints and exports. A checkpoint holds everything needed to continue step-exactly.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from minisd.components import build_unet
from minisd.config import UnetParams
from minisd.stage import StageError
from minisd.training.checkpoints import CheckpointManager
from minisd.training.guards import check_finite
from minisd.training.schedule import make_lr_scheduler, WallClockBudget
from minisd.training.live import TrainingLog
from minisd.unet.data import CaptionedLatents, DataOrder, seeded_generator
from minisd.unet.diffusion import diffusion_loss, draw_noise, make_noise_scheduler
from minisd.unet.sampling import decode_grid, sample_latents
from minisd.unet.validation import FixedValidation

log = logging.getLogger("minisd.unet")


@dataclass
class Preview:
    """What the sample grids need: the VAE to decode, and the fixed prompts' embeddings."""

    vae: AutoencoderKL
    scaling_factor: float
    cond: torch.Tensor  # (prompts, tokens, hidden)
    uncond: torch.Tensor  # (tokens, hidden): the "" prompt
    seeds: list[int]
    steps: int
    guidance: float


@dataclass
class Outputs:
    unet_dir: Path
    scheduler_dir: Path
    live_dir: Path


@dataclass
class TrainResult:
    metrics: dict  # final val losses (main process)
    step: int  # optimizer steps done (< max_steps when the wall-clock budget stopped the run)
    raw_state: dict | None  # the raw (non-EMA) weights at the end, main process only


def train_unet(params: UnetParams, train: CaptionedLatents, val: CaptionedLatents | None, outputs: Outputs, *,
               accelerator, checkpoints: CheckpointManager | None = None, preview: Preview | None = None,
               on_batch: Callable | None = None, on_step: Callable | None = None) -> TrainResult:
    """Train, export EMA weights + scheduler config to `outputs`.

    on_batch(step, indices, rows) and on_step(step, raw_model) are observation hooks for tests.
    """
    device, rank, world = accelerator.device, accelerator.process_index, accelerator.num_processes
    main = accelerator.is_main_process
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # ~20% faster fp32 on CPU; deterministic

    if params.sample_size != train.latent_shape[-1]:
        raise StageError(f"unet.sample_size is {params.sample_size} but the cached latents are "
                         f"{train.latent_shape[-1]} wide; set unet.sample_size: {train.latent_shape[-1]}")
    unet = build_unet(params, cross_attention_dim=train.embeddings.shape[-1], latent_channels=train.latent_shape[0])
    unet.train()
    layout = torch.channels_last if params.channels_last else torch.contiguous_format
    unet.to(memory_format=layout)
    ema = EMAModel(unet.parameters(), decay=params.ema_decay, use_ema_warmup=True, inv_gamma=1.0,
                   power=params.ema_power, foreach=True, model_cls=UNet2DConditionModel, model_config=unet.config)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    lr_scheduler = make_lr_scheduler(optimizer, params.lr_schedule, params.warmup_steps, params.max_steps)
    unet, optimizer = accelerator.prepare(unet, optimizer)
    ema.to(device=device)
    raw = accelerator.unwrap_model(unet)
    noise_scheduler = make_noise_scheduler(params.noise_scheduler)
    num_timesteps = noise_scheduler.config.num_train_timesteps
    validation = FixedValidation(val, num_timesteps, params.val_samples, params.batch_size) if val else None
    order = DataOrder(len(train), params.batch_size, params.seed, world, rank)
    gas = params.gradient_accumulation_steps

    objects = {"model": unet, "ema": ema, "optimizer": optimizer, "lr_scheduler": lr_scheduler}
    step, spent_minutes, window = 0, 0.0, (0.0, 0)
    restored = checkpoints.restore(objects, files={"live": outputs.live_dir}) if checkpoints else None
    if restored:
        step, extra = restored
        spent_minutes = extra.get("minutes", 0.0)
        window = tuple(extra.get("loss_window", window))  # a half-filled log window continues exactly
        if extra.get("world", world) != world:
            log.warning("resumed with %d processes, checkpoint had %d: data order differs from here on",
                        world, extra["world"])
        log.info("resuming at step %d of %d", step, params.max_steps)
    live = TrainingLog(outputs.live_dir, resume=bool(restored)) if main else None

    def evaluate(at: int) -> dict:
        """Val loss of raw and EMA weights, and a sample grid with EMA weights (main process only)."""
        result = {}
        if not main:
            return result
        raw.eval()
        ema.store(raw.parameters())
        try:
            ema.copy_to(raw.parameters())
            if validation and (at % params.val_every == 0 or at == params.max_steps or stopping):
                result["val/loss"] = validation.loss(raw, noise_scheduler, device, accelerator.autocast)
            if preview and (at % params.sample_every == 0 or at == params.max_steps or stopping):
                with accelerator.autocast():
                    latents = sample_latents(raw, noise_scheduler.config, preview.cond, preview.uncond, preview.seeds,
                                             preview.steps, preview.guidance, train.latent_shape, device)
                live.image(at, "samples", decode_grid(preview.vae, latents, preview.scaling_factor, len(preview.seeds)))
        finally:
            ema.restore(raw.parameters())
        if "val/loss" in result:
            result["val/loss_raw"] = validation.loss(raw, noise_scheduler, device, accelerator.autocast)
            live.metrics(at, result)
        raw.train()
        return result

    budget = WallClockBudget(params.max_minutes, spent_minutes=spent_minutes)  # a resumed run keeps its budget
    bar = tqdm(total=params.max_steps, initial=step, desc="train_unet", unit="step", disable=not main,
               dynamic_ncols=True)
    (window_loss, window_steps), smoothed = window, None
    started, started_step = time.perf_counter(), step
    stopping = False
    final: dict = {}
    while step < params.max_steps:
        over = torch.tensor(float(budget.exhausted()), device=device)
        if accelerator.reduce(over, "sum").item() > 0:
            stopping = True
            log.warning("wall-clock budget of %s min reached at step %d of %d: stopping early",
                        params.max_minutes, step, params.max_steps)
            break
        lr = lr_scheduler.get_last_lr()[0]
        step_loss = 0.0
        for micro in range(gas):
            micro_step = step * gas + micro
            indices = order.indices(micro_step)
            generator = seeded_generator(params.seed, micro_step, rank)
            latents, cond, rows = train.batch(indices, generator, params.caption_dropout)
            noise, timesteps = draw_noise(latents, generator, num_timesteps, params.noise_offset)
            if on_batch:
                on_batch(step, indices, rows)
            with accelerator.accumulate(unet):
                loss = diffusion_loss(unet, noise_scheduler, latents.to(device, memory_format=layout), cond.to(device),
                                      noise.to(device, memory_format=layout), timesteps.to(device), params.snr_gamma)
                mean_loss = accelerator.reduce(loss.detach().clone(), "mean")
                check_finite(mean_loss, step + 1, f"micro-batch {micro_step}")
                accelerator.backward(loss)
                if accelerator.sync_gradients and params.grad_clip:
                    accelerator.clip_grad_norm_(unet.parameters(), params.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            step_loss += mean_loss.item() / gas
        lr_scheduler.step()
        ema.step(raw.parameters())
        step += 1
        if on_step:
            on_step(step, raw)
        window_loss, window_steps = window_loss + step_loss, window_steps + 1
        smoothed = step_loss if smoothed is None else 0.9 * smoothed + 0.1 * step_loss
        rate = (step - started_step) * params.batch_size * gas * world / (time.perf_counter() - started)
        bar.update(1)
        bar.set_postfix(loss=f"{smoothed:.4f}", samples_s=f"{rate:.1f}", lr=f"{lr:.2e}")
        if main and (step % params.log_every == 0 or step == params.max_steps):
            live.metrics(step, {"train/loss": window_loss / window_steps, "lr": lr,
                                "epoch": order.epoch_of(step * gas)})
            window_loss, window_steps = 0.0, 0
        if step < params.max_steps and (step % params.val_every == 0 or step % params.sample_every == 0):
            final.update(evaluate(step))
            accelerator.wait_for_everyone()
        if checkpoints and step < params.max_steps and step % params.checkpoint_every == 0:
            extra = {"micro_step": step * gas, "world": world, "minutes": budget.elapsed_minutes(),
                     "loss_window": [window_loss, window_steps]}
            checkpoints.save(step, objects, extra, files={"live": outputs.live_dir})
    bar.close()
    stopping = True  # the final evaluation always runs, whatever the step
    final.update(evaluate(step))
    raw_state = None
    if main:
        raw_state = {k: v.detach().cpu().clone() for k, v in raw.state_dict().items()}
        ema.copy_to(raw.parameters())  # the exported weights are the EMA ones
        for folder in (outputs.unet_dir, outputs.scheduler_dir):
            shutil.rmtree(folder, ignore_errors=True)
        raw.save_pretrained(outputs.unet_dir, safe_serialization=True)
        noise_scheduler.save_pretrained(outputs.scheduler_dir)
        if "val/loss" in final:
            live.summary({"final_val_loss": final["val/loss"]})
        live.end()
        log.info("saved %s and %s (EMA weights, step %d)", outputs.unet_dir, outputs.scheduler_dir, step)
    accelerator.wait_for_everyone()
    if checkpoints:
        checkpoints.clear()
    return TrainResult(final, step, raw_state)
