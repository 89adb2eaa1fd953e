"""benchmarks/gpu_check.py: the seed-scratch profile's shapes, and the whole check at --cpu-smoke size.

The real check needs a GPU to mean anything; the smoke run proves every part of it (copy, profile,
dvc repro by stage, two processes, step timing with FLOPs, cached vs encode, log + JSON) on a CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from minisd import profiles
from minisd.config import load_params

ROOT = Path(__file__).resolve().parents[1]


def test_seed_scratch_profile_has_the_seed_shapes_from_scratch(tmp_path):
    params_path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params_path)
    profiles.apply("seed-scratch", params_path)
    params = load_params(params_path)
    seed = profiles.load_overrides("seed")

    assert {params.tokenizer.source, params.text_encoder.source, params.vae.source} == {"scratch"}
    assert params.tokenizer.max_length == 77
    text = params.text_encoder
    assert (text.hidden_size, text.num_layers, text.num_heads, text.intermediate_size) == (768, 12, 12, 3072)
    vae = params.vae
    assert (vae.block_out_channels, vae.layers_per_block, vae.latent_channels) == ([128, 256, 512, 512], 2, 4)
    for key in ("block_out_channels", "layers_per_block", "down_block_types", "up_block_types",
                "attention_head_dim", "batch_size", "lr", "ema_decay", "mixed_precision"):
        assert getattr(params.unet, key) == seed["unet"][key], key
    assert params.unet.noise_scheduler.prediction_type == "epsilon"
    assert params.unet.noise_scheduler.rescale_zero_terminal_snr is False
    assert (vae.batch_size, vae.crop_size, vae.lr) == (seed["vae"]["batch_size"], None, seed["vae"]["lr"])
    assert params.ingest.image_size // 2 ** (len(vae.block_out_channels) - 1) == params.unet.sample_size
    assert params.unet.max_steps <= 100 and params.vae.max_steps <= 100 and params.clip.max_steps <= 100
    assert params.judge.epochs == 1


@pytest.mark.e2e
def test_cpu_smoke_run_writes_every_part(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}  # as conftest.py explains
    proc = subprocess.Popen([sys.executable, "benchmarks/gpu_check.py", "--cpu-smoke", "--out", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = proc.communicate(timeout=900)[0]
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the check stops its running dvc command's process group first
        output = proc.communicate(timeout=60)[0]
        pytest.fail(f"gpu_check --cpu-smoke did not finish in 900 s\n{output[-4000:]}")
    log = (out / "gpu_check.log").read_text() if (out / "gpu_check.log").is_file() else ""
    assert proc.returncode == 0, f"{output[-6000:]}\n{log[-4000:]}"
    data = json.loads((out / "gpu_check.json").read_text())

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    repro = data["repro"]
    assert [r["stage"] for r in repro["stages"]] and {r["stage"] for r in repro["stages"]} == set(stages)
    assert all(r["rc"] == 0 and r["seconds"] > 0 and "peak_gpu_mib" in r for r in repro["stages"])
    assert repro["ok"] and repro["up_to_date"], repro

    timing = data["step_timing"]
    assert timing["flops_per_step"] > 0
    rows = timing["rows"]
    assert {(r["precision"], r["channels_last"]) for r in rows} >= {("fp32", False), ("fp32", True)}
    for row in rows:
        assert "error" not in row, row
        assert row["samples_per_s"] > 0 and row["flops_per_step"] > 0 and row["achieved_tflops"] > 0, row

    encode = data["cached_vs_encode"]
    assert encode["ratio"] > 0 and encode["cached_samples_per_s"] > 0 and encode["encode_samples_per_s"] > 0

    multi = data["multi_process"]
    if multi["ok"]:
        assert [r["rank"] for r in multi["ranks_seen"]] == [0, 1]
        assert all(r["world_size"] == 2 for r in multi["ranks_seen"])
    else:
        assert multi["reason"], multi

    assert "| stage | seconds |" in log and "UNet training step" in log and "Running stage" in log
