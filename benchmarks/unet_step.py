"""One train_unet step, timed and counted the same way on any device: shared by bench_unet.py (CPU
tables) and gpu_check.py (the seed scale on a GPU).

A step is what train_unet does per batch (diffusion loss, backward, AdamW; GradScaler for fp16, as
accelerate does), on inputs drawn beforehand; times are medians with the device synchronised;
FLOPs come from torch's counter with attention on SDPA's math kernel, so CPU attention is counted too.
"""

from __future__ import annotations

import gc
import statistics
import time
from contextlib import nullcontext

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from minisd.params.unet import UnetParams
from minisd.training.attention import fused_attention_is_slow, use_matmul_attention
from minisd.training.optim import adamw
from minisd.unet.data import CaptionedLatents
from minisd.unet.diffusion import diffusion_loss, draw_noise, make_noise_scheduler
from minisd.unet.model import build_unet


def set_tf32(precision: str) -> None:
    """fp32 means strict fp32 (no TF32 in matmuls or cuDNN convs); tf32 turns both on; the autocast rows
    keep torch's defaults (ieee matmuls, tf32 convs) for their remaining fp32 ops, as train_unet runs."""
    matmul, conv = {"fp32": ("ieee", "ieee"), "tf32": ("tf32", "tf32")}.get(precision, ("ieee", "tf32"))
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9; do not mix with allow_tf32
        torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = matmul, conv
    else:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul == "tf32", conv == "tf32"


def autocast(device: torch.device, precision: str):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def median_seconds(fn, device: torch.device, iters: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak(device: torch.device, precision: str, n: int, iters: int) -> float:
    """Measured n x n matmul TFLOP/s: the ceiling a step's achieved rate is read against."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    set_tf32(precision)
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    return 2 * n**3 / median_seconds(lambda: a @ b, device, iters, 2) / 1e12


class TrainStep:
    """One train_unet step at a UNet config, in a precision ("fp32", "tf32", "bf16", "fp16") and layout."""

    def __init__(self, unet: UnetParams, hidden: int, latent_channels: int, device: torch.device, precision: str,
                 channels_last: bool = False, compiled: bool = False):
        self.params, self.device, self.precision = unet, device, precision
        self.layout = torch.channels_last if channels_last else torch.contiguous_format
        self.unet = build_unet(unet, hidden, latent_channels).to(device, memory_format=self.layout).train()
        if fused_attention_is_slow(device, precision):  # as train_unet does
            use_matmul_attention(self.unet)
        self.model = torch.compile(self.unet) if compiled else self.unet
        self.optimizer = adamw(self.unet.parameters(), lr=unet.lr, weight_decay=unet.weight_decay)
        self.noise_scheduler = make_noise_scheduler(unet.noise_scheduler)
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    def loss(self, latents, cond, noise, timesteps, eager: bool = False) -> torch.Tensor:
        """The diffusion loss of one batch (eager: bypassing torch.compile), in the step's precision."""
        set_tf32(self.precision)
        latents, noise = (x.to(self.device, memory_format=self.layout) for x in (latents, noise))
        with autocast(self.device, self.precision):
            return diffusion_loss(self.unet if eager else self.model, self.noise_scheduler, latents,
                                  cond.to(self.device), noise, timesteps.to(self.device), self.params.snr_gamma)

    def __call__(self, latents, cond, noise, timesteps) -> None:
        loss = self.loss(latents, cond, noise, timesteps)
        if self.scaler:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def gradients(self, latents, cond, noise, timesteps, eager: bool = False) -> dict[str, torch.Tensor]:
        """Forward + backward, no update (eager: bypassing torch.compile): each parameter's gradient."""
        self.loss(latents, cond, noise, timesteps, eager).backward()
        grads = {name: torch.zeros_like(p, dtype=torch.float32) if p.grad is None else p.grad.detach().float().clone()
                 for name, p in self.unet.named_parameters()}
        self.optimizer.zero_grad(set_to_none=True)
        return grads

    def parameters_m(self) -> float:
        return sum(p.numel() for p in self.unet.parameters()) / 1e6


def compiled_gradient_error(step: TrainStep, inputs) -> float:
    """Relative error of a compiled step's gradients against the eager ones of the same weights and precision.

    A speed row means nothing if the step computes something else: under CPU bf16 autocast, torch 2.13's
    compiled backward returned all-zero gradients for 280 of the default UNet's 326 parameters (README,
    performance), while the fp32 compiled step matched eager exactly.
    """
    got, want = step.gradients(*inputs), step.gradients(*inputs, eager=True)
    error = sum((got[n] - want[n]).norm() ** 2 for n in want) / sum(want[n].norm() ** 2 for n in want)
    return float(error.sqrt())


def step_flops(step: TrainStep, inputs) -> int:
    """FLOPs of one step (forward + backward + optimizer's counted ops), attention on the math kernel."""
    with sdpa_kernel([SDPBackend.MATH]), FlopCounterMode(display=False) as counter:
        step(*inputs)
    return counter.get_total_flops()


def fake_cache(n: int, latent_channels: int, size: int, tokens: int, hidden: int) -> CaptionedLatents:
    """Cache-shaped data in the cache's fp16, two captions per sample, as train_unet reads it."""
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(n, latent_channels, size, size, generator=g).half()
    emb = torch.randn(2 * n + 1, tokens, hidden, generator=g).half()
    return CaptionedLatents(mean, mean.abs() * 0.1, [[2 * i, 2 * i + 1] for i in range(n)], emb, 2 * n)


def batch_inputs(data: CaptionedLatents, batch: int, generator: torch.Generator, num_timesteps: int, device):
    """(latents, caption states, noise, timesteps) of one batch from cache-shaped data, on `device`."""
    latents, cond, _ = data.batch(torch.randint(0, len(data), (batch,), generator=generator), generator, 0.1)
    noise, timesteps = draw_noise(latents, generator, num_timesteps, 0.0)
    return tuple(x.to(device) for x in (latents, cond, noise, timesteps))
