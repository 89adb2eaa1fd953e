"""How the cache builders run on any number of processes and still write the same bytes.

The inference Accelerator (GPU when present, multi-process on CPU too), fixed batch boundaries, the
split of shards between processes, the output folder emptied once by the main process, and every
sample's metadata read up front.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from accelerate import Accelerator

from minisd.shards import SPLITS, Sample, iter_samples, shard_paths
from minisd.stage import StageError
from minisd.training.precision import resolve_mixed_precision, switch_process_precision


def _on_cpu() -> bool:
    return not (torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available()))


def make_inference_accelerator(mixed_precision: str, bf16_pays_on_cpu: bool = True) -> Accelerator:
    """An Accelerator for batched inference: GPU when present, multi-process on CPU as well.

    "auto" on CUDA is bf16 (fp16 on old GPUs). On a CPU with native bf16 it is bf16 only where we
    measured it faster (`bf16_pays_on_cpu`): the VAE's convolutions gain 1.4-2x; the default text
    encoder (hidden 128) gains nothing beyond noise (0.8-1.3x across runs), so it keeps fp32, the
    precision the pipeline encodes prompts in at sampling time; hidden >= 512 gains 1.5-2x (see
    benchmarks/bench_caches.py). An explicit "bf16"/"fp16"/"no" is always honoured.
    """
    on_cpu = _on_cpu()
    device = "cpu" if on_cpu else ("cuda" if torch.cuda.is_available() else "xpu")
    resolved = resolve_mixed_precision(mixed_precision, device)
    if mixed_precision == "auto" and on_cpu and not bf16_pays_on_cpu:
        resolved = "no"
    switch_process_precision(resolved)  # both caches built in one process may ask for two precisions
    return Accelerator(mixed_precision=resolved, cpu=on_cpu)


def read_all_meta(shards_dir: str | Path) -> dict[str, list[Sample]]:
    """Every sample's metadata (no images) per split, in shard order; a key seen twice is an ingest bug."""
    out: dict[str, list[Sample]] = {}
    seen: dict[str, str] = {}
    for split in SPLITS:
        out[split] = []
        for shard in shard_paths(shards_dir, split):
            for meta in iter_samples(shards_dir, split, shards=[shard], images=False):
                if meta.key in seen:
                    raise StageError(f"sample key {meta.key!r} appears twice ({seen[meta.key]} and {shard})")
                seen[meta.key] = str(shard)
                out[split].append(meta)
    return out


def shard_jobs(shards_dir: str | Path) -> list[tuple[str, Path]]:
    """(split, shard) pairs in a fixed order; process i takes every num_processes-th one."""
    return [(split, shard) for split in SPLITS for shard in shard_paths(shards_dir, split)]


def fresh_dir(accelerator: Accelerator, path: str | Path) -> Path:
    """Empty `path` on the main process (stale files from other runs must not leak into an output)."""
    path = Path(path)
    if accelerator.is_main_process:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
    accelerator.wait_for_everyone()
    return path


def batches(n: int, batch_size: int) -> list[range]:
    """Fixed batch boundaries: a row is always encoded in the same batch, whatever the process count,
    so one process and N processes give byte-identical results."""
    return [range(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
