"""Two processes on CPU (gloo) through `accelerate launch`: disjoint data, one set of outputs.

On a machine without GPUs, `--multi_gpu` makes accelerate start the processes with torchrun and
`make_accelerator` selects gloo (`--cpu` would need mpirun).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_run_splits_data_and_saves_once(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
               str(HERE / "_unet_ddp_worker.py"), str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [json.loads((tmp_path / f"seen-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in runs] == [2, 2]
    for a, b in zip(runs[0]["seen"], runs[1]["seen"]):
        assert not set(a) & set(b)  # each step, the two processes trained on different samples
    assert len(runs[0]["seen"]) == len(runs[1]["seen"]) == 4
    log = done.stdout + done.stderr
    assert log.count("saved ") == 1, log[-3000:]  # exported once, by the main process
    assert log.count("checkpoint saved") == 1  # step 2 only (the final step needs none)
    weights = load_file(str(tmp_path / "unet" / "diffusion_pytorch_model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert "repa_loss" in (tmp_path / "live" / "metrics.json").read_text()  # REPA's projector trained under DDP
    assert not any((tmp_path / "ckpt").iterdir())  # the finished run cleared its checkpoints
