"""A real SIGKILL mid-run, then a rerun: the result equals an uninterrupted run bit for bit."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from minisd.training.precision import make_accelerator
from minisd.unet.trainer import Outputs, fit_unet
from _unet import resume_params, synthetic_split

HERE = Path(__file__).parent


def _run(out: Path, kill_at: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
    return subprocess.run([sys.executable, str(HERE / "_unet_resume_worker.py"), str(out), str(kill_at)],
                          env=env, capture_output=True, text=True, timeout=300)


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path):
    reference = tmp_path / "reference"
    fit_unet(resume_params(), synthetic_split(), synthetic_split(16, seed=1),
             Outputs(reference / "unet", reference / "scheduler", reference / "live"),
             accelerator=make_accelerator("no"))

    killed = _run(tmp_path / "run", kill_at=7)  # checkpoints at 3 and 6; dies inside step 8
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "run" / "unet").exists()
    resumed = _run(tmp_path / "run", kill_at=-1)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming at step 6" in resumed.stderr

    a = load_file(str(reference / "unet" / "diffusion_pytorch_model.safetensors"))
    b = load_file(str(tmp_path / "run" / "unet" / "diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    for name in ("metrics.json", "plots/metrics/train/loss.tsv", "plots/metrics/val/loss.tsv"):
        assert (reference / "live" / name).read_bytes() == (tmp_path / "run" / "live" / name).read_bytes(), name
