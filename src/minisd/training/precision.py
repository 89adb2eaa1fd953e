"""Mixed precision and the Accelerator: one decision for every trainer, made for the device in use.

"auto" means the fastest precision that is numerically safe on the device accelerate picks:
bf16 on CUDA when supported (no loss scaling needed), fp16 on older CUDA, bf16 on a CPU with
native bf16 instructions (about 2x the fp32 matmul rate on AVX512-bf16 / AMX), else plain fp32.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs, PartialState
from accelerate.state import AcceleratorState

from minisd.stage import StageError

CHOICES = ("auto", "no", "bf16", "fp16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU executes bf16 natively (emulated bf16 is slower than fp32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: be conservative
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def resolve_mixed_precision(requested: str, device: torch.device | str | None = None) -> str:
    """Map "auto"|"no"|"bf16"|"fp16" to what accelerate gets for `device` (default: accelerate's pick)."""
    if requested not in CHOICES:
        raise StageError(f"mixed_precision must be one of {CHOICES}, got {requested!r}")
    device = torch.device(device) if device is not None else PartialState().device
    if requested == "fp16" and device.type == "cpu":
        raise StageError("mixed_precision: fp16 needs a CUDA device; use 'bf16', 'no' or 'auto' on CPU")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "no"


def _cpu_processes() -> bool:
    """Several processes but no GPU (e.g. `accelerate launch --multi_gpu --num_processes 2` on a CPU box):
    accelerate only picks its gloo MULTI_CPU mode when told `cpu=True`, else each process trains alone."""
    return not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1


def switch_process_precision(resolved: str) -> None:
    """Let this process take a new precision (one of accelerate's, already resolved).

    accelerate keeps one precision per process and refuses a second one, so a notebook (or a test
    session) that trains the VAE in fp32 and then the UNet in bf16 would fail. When the precision in
    force differs, renew accelerate's precision state and keep the process group. Accelerators are
    meant to be used one after the other: an earlier Accelerator follows the state it shares.
    """
    in_force = AcceleratorState._shared_state.get("_mixed_precision")
    if in_force is not None and in_force != resolved:
        AcceleratorState._reset_state(reset_partial_state=False)


def make_accelerator(mixed_precision: str, gradient_accumulation_steps: int = 1,
                     find_unused_parameters: bool = False) -> Accelerator:
    """An Accelerator for this process (single device, DDP under `accelerate launch`, multi-node).

    find_unused_parameters: some steps leave trained parameters without a gradient (DDP only).

    On CPU it also flushes denormals to zero: about 20% faster fp32 training, deterministic, and
    the tiny activations it zeroes change nothing that matters.
    """
    cpu = _cpu_processes()
    state = PartialState(cpu=cpu)  # the shared process state: created first so precision sees the real device
    if state.device.type == "cpu":
        torch.set_flush_denormal(True)
    resolved = resolve_mixed_precision(mixed_precision)
    switch_process_precision(resolved)
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if find_unused_parameters else None
    return Accelerator(cpu=cpu, mixed_precision=resolved, gradient_accumulation_steps=gradient_accumulation_steps,
                       kwargs_handlers=handlers)
