"""One process, several precisions: what a notebook that trains the VAE and then the UNet does."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minisd.caches.parallel import make_inference_accelerator
from minisd.training import precision
from minisd.training.precision import make_accelerator, resolve_mixed_precision

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "no")])
def test_auto_on_cpu_follows_native_bf16(monkeypatch, native, expected):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert resolve_mixed_precision("auto", "cpu") == expected
    assert resolve_mixed_precision("no", "cpu") == "no" and resolve_mixed_precision("bf16", "cpu") == "bf16"


def _matmul_dtype(accelerator) -> torch.dtype:
    with accelerator.autocast():
        return (torch.ones(4, 4) @ torch.ones(4, 4)).dtype


def test_accelerators_with_different_precisions_one_after_the_other():
    first = make_accelerator("bf16")
    assert first.mixed_precision == "bf16" and _matmul_dtype(first) == torch.bfloat16
    second = make_accelerator("no")  # accelerate alone raises "AcceleratorState has already been initialized"
    assert second.mixed_precision == "no" and _matmul_dtype(second) == torch.float32
    third = make_inference_accelerator("bf16")
    assert third.mixed_precision == "bf16" and _matmul_dtype(third) == torch.bfloat16
    again = make_accelerator("bf16", gradient_accumulation_steps=2)  # same precision: state kept
    assert again.mixed_precision == "bf16" and again.gradient_accumulation_steps == 2


def _as_kind(kind: str) -> subprocess.CompletedProcess:
    code = "from minisd.training.precision import resolve_mixed_precision as r; print(r('auto', 'cpu'))"
    return subprocess.run([str(ROOT / "scripts" / "as_cpu_kind.sh"), kind, sys.executable, "-c", code],
                          capture_output=True, text=True)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_as_cpu_kind_gives_a_process_the_other_kinds_precision():
    answers = {kind: _as_kind(kind) for kind in ("avx2", "bf16")}
    for kind, result in answers.items():
        assert result.returncode == 0, (kind, result.stderr)
    assert answers["avx2"].stdout.split()[-1] == "no" and answers["bf16"].stdout.split()[-1] == "bf16"
    assert _as_kind("arm").returncode == 2  # a kind it does not know is refused, not guessed
