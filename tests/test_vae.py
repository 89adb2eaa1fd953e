"""The train_vae stage on a tiny config: learns, saves a stock diffusers folder, resumes, fails clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from safetensors.torch import load_file

from _drawings import make_shards
from minisd.components import ComponentError
from minisd.params.vae import LossWeights, VaeParams
from minisd.shards import load_images
from minisd.stage import StageError
from minisd.training.loop import NonFiniteLossError
from minisd.vae import trainer as trainer_module
from minisd.vae.trainer import train_vae
from minisd.vae.metrics import psnr
from minisd.vae.validation import latent_scaling_factor, reconstruct

TINY = VaeParams(
    block_out_channels=[8, 16],
    batch_size=8,
    crop_size=16,
    full_size_steps=0,
    decoder_steps=0,
    lr=3e-3,
    warmup_steps=2,
    max_steps=30,
    val_every=15,
    val_samples=8,
    log_every=5,
    checkpoint_every=10,
    ema_decay=0.9,
    mixed_precision="no",  # exact comparisons below; bf16 is covered by the benchmark
)


def _run(root: Path, shards: Path, params: VaeParams = TINY) -> dict:
    return train_vae(params, shards, root / "models" / "vae", root / "results" / "vae", root / "ckpt")


def _tsv(path: Path) -> list[tuple[int, float]]:
    rows = path.read_text().splitlines()[1:]
    return [(int(step), float(value)) for step, value in (row.split("\t") for row in rows)]


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("data"), n_train=48, n_val=8, size=32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shards) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("run")
    return root, _run(root, shards)


def test_loss_decreases_and_metrics_are_logged(trained):
    root, metrics = trained
    loss = _tsv(root / "results" / "vae" / "plots" / "metrics" / "train" / "loss.tsv")
    assert [step for step, _ in loss] == [5, 10, 15, 20, 25, 30]
    assert loss[-1][1] < 0.9 * loss[0][1]
    summary = json.loads((root / "results" / "vae" / "metrics.json").read_text())
    assert summary["step"] == 30 and summary["steps"] == 30
    assert set(summary["val"]) == {"psnr", "ssim", "ink_f1", "paper_grey"}
    assert summary["val"]["psnr"] == pytest.approx(metrics["val/psnr"])
    assert [s for s, _ in _tsv(root / "results" / "vae" / "plots" / "metrics" / "val" / "psnr.tsv")] == [15, 30]
    assert (root / "results" / "vae" / "plots" / "images" / "reconstructions.png").is_file()
    assert not (root / "ckpt").exists() or not any((root / "ckpt").iterdir())  # a finished run cleans up


def test_saved_folder_is_stock_diffusers_and_round_trips(trained, shards):
    root, metrics = trained
    folder = root / "models" / "vae"
    assert (folder / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt*"))
    vae = AutoencoderKL.from_pretrained(folder).eval()
    _, val = load_images(shards, "val")
    recon = reconstruct(vae, val)
    assert recon.shape == val.shape and recon.dtype == np.uint8
    # the reloaded weights are exactly the ones that were validated (EMA weights, not the raw ones)
    assert psnr(val, recon) == pytest.approx(metrics["val/psnr"], abs=1e-9)


def test_scaling_factor_is_measured_from_data(trained, shards):
    root, metrics = trained
    config = json.loads((root / "models" / "vae" / "config.json").read_text())
    assert config["scaling_factor"] == metrics["scaling_factor"] != 0.18215
    assert config["sample_size"] == 32
    vae = AutoencoderKL.from_pretrained(root / "models" / "vae").eval()
    _, train = load_images(shards, "train")
    assert latent_scaling_factor(vae, train, seed=TINY.seed) == pytest.approx(config["scaling_factor"], abs=1e-5)


def test_resume_after_interruption_continues_the_step_count(tmp_path, shards, trained, monkeypatch):
    real_check = trainer_module.check_finite

    def killed_at_step_26(loss, step, hint=""):
        if step == 26:
            raise KeyboardInterrupt  # what a `kill` mid-run looks like to the loop
        real_check(loss, step, hint)

    monkeypatch.setattr(trainer_module, "check_finite", killed_at_step_26)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, shards)
    saved = sorted(p.name for p in next((tmp_path / "ckpt").iterdir()).iterdir())
    assert saved == ["step-00000010", "step-00000020"]  # checkpoints_keep: 2

    monkeypatch.setattr(trainer_module, "check_finite", real_check)
    metrics = _run(tmp_path, shards)
    assert metrics["steps"] == 30
    loss = _tsv(tmp_path / "results" / "vae" / "plots" / "metrics" / "train" / "loss.tsv")
    assert [step for step, _ in loss] == [5, 10, 15, 20, 25, 30]  # continued at 21, no repeats
    # RNG, optimizer, EMA and LR schedule all came back: identical to the uninterrupted run
    reference = load_file(trained[0] / "models" / "vae" / "diffusion_pytorch_model.safetensors")
    resumed = load_file(tmp_path / "models" / "vae" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
    assert not any((tmp_path / "ckpt").iterdir())


def test_non_finite_loss_stops_and_keeps_the_good_checkpoint(tmp_path, shards, monkeypatch):
    real_forward = trainer_module.VaeLoss.forward
    calls = {"n": 0}

    def nan_at_call_14(self, recon, target, kl):
        calls["n"] += 1
        total, parts = real_forward(self, recon, target, kl)
        return (total * float("nan") if calls["n"] == 14 else total), parts

    monkeypatch.setattr(trainer_module.VaeLoss, "forward", nan_at_call_14)
    with pytest.raises(NonFiniteLossError, match="step 14"):
        _run(tmp_path, shards)
    folder = next((tmp_path / "ckpt").iterdir())
    assert sorted(p.name for p in folder.iterdir()) == ["step-00000010"]
    assert not (tmp_path / "models" / "vae").exists()


def test_decoder_only_keeps_the_encoder(tmp_path, shards, trained):
    start = tmp_path / "start"
    vae = AutoencoderKL.from_pretrained(trained[0] / "models" / "vae")
    vae.save_pretrained(start)
    params = TINY.model_copy(
        update={"source": "pretrained", "path": str(start), "decoder_only": True, "max_steps": 5, "ema_decay": None}
    )
    _run(tmp_path, shards, params)
    before = load_file(start / "diffusion_pytorch_model.safetensors")
    after = load_file(tmp_path / "models" / "vae" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(("encoder.", "quant_conv.")))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))


@pytest.mark.parametrize(
    "update, error, key",
    [
        ({"crop_size": 15}, StageError, "vae.crop_size"),
        ({"crop_size": 64}, StageError, "vae.crop_size"),
        ({"block_out_channels": [4, 8]}, ComponentError, "vae.block_out_channels"),
        ({"block_out_channels": [8, 8, 8, 8, 8, 8, 8]}, ComponentError, "vae.block_out_channels"),
        ({"source": "pretrained", "path": "/no/such/vae"}, ComponentError, "vae.path"),
        ({"loss": LossWeights(lpips=0.5)}, StageError, "vae.loss.lpips_path"),
        ({"loss": LossWeights(lpips=0.5, lpips_path="/no/lpips.safetensors")}, StageError, "vae.loss.lpips_path"),
    ],
)
def test_bad_params_fail_naming_the_key(tmp_path, shards, update, error, key):
    with pytest.raises(error, match=key.replace(".", r"\.")):
        _run(tmp_path, shards, TINY.model_copy(update=update))


def test_last_full_size_steps_train_on_whole_images(tmp_path, shards, monkeypatch):
    crops = []
    real_batch = trainer_module.ImageBank.batch

    def recording(self, batch_size, generator, crop=None):
        crops.append(crop)
        return real_batch(self, batch_size, generator, crop)

    monkeypatch.setattr(trainer_module.ImageBank, "batch", recording)
    _run(tmp_path, shards, TINY.model_copy(update={"max_steps": 5, "full_size_steps": 2}))
    assert crops == [16, 16, 16, None, None]


PHASED = TINY.model_copy(update={"max_steps": 6, "decoder_steps": 4, "decoder_noise": 0.5, "decoder_lr": 1e-3,
                                 "ema_decay": None, "checkpoint_every": 3, "log_every": 1})


@pytest.fixture(scope="module")
def phased(tmp_path_factory, shards) -> tuple[Path, Path]:
    """(the run with a decoder phase, the same run without it)"""
    with_phase, without = tmp_path_factory.mktemp("phased"), tmp_path_factory.mktemp("unphased")
    _run(with_phase, shards, PHASED)
    _run(without, shards, PHASED.model_copy(update={"decoder_steps": 0}))
    return with_phase, without


def test_decoder_phase_keeps_the_latent_space_exactly(phased):
    with_phase, without = (load_file(root / "models" / "vae" / "diffusion_pytorch_model.safetensors")
                           for root in phased)
    encoder = [k for k in without if k.startswith(("encoder.", "quant_conv."))]
    assert encoder and all(torch.equal(with_phase[k], without[k]) for k in encoder)
    assert any(not torch.equal(with_phase[k], without[k]) for k in without if k.startswith("decoder."))
    configs = [json.loads((root / "models" / "vae" / "config.json").read_text()) for root in phased]
    assert configs[0]["scaling_factor"] == configs[1]["scaling_factor"]


def test_decoder_phase_trains_on_noisy_whole_pages_at_its_own_rate(tmp_path, shards, phased, monkeypatch):
    seen = []
    real_forward = trainer_module.VaeForward.forward

    def recording(self, x, generator, latent_noise=None):
        seen.append((x.shape[-1], latent_noise))
        return real_forward(self, x, generator, latent_noise)

    monkeypatch.setattr(trainer_module.VaeForward, "forward", recording)
    _run(tmp_path, shards, PHASED)
    factor = json.loads((tmp_path / "models" / "vae" / "config.json").read_text())["scaling_factor"]
    assert [size for size, _ in seen] == [16] * 6 + [32] * 4  # crops, then whole pages
    assert [noise for _, noise in seen[:6]] == [None] * 6
    assert [noise for _, noise in seen[6:]] == pytest.approx([0.5 / factor] * 4, rel=1e-4)
    lr = dict(_tsv(tmp_path / "results" / "vae" / "plots" / "metrics" / "train" / "lr.tsv"))
    unphased = dict(_tsv(phased[1] / "results" / "vae" / "plots" / "metrics" / "train" / "lr.tsv"))
    assert [lr[s] for s in range(1, 7)] == [unphased[s] for s in range(1, 7)]  # the main schedule, unchanged
    assert [lr[s] for s in range(7, 11)] == pytest.approx([1e-3] * 4)


def test_decoder_phase_resumes_exactly(tmp_path, shards, phased, monkeypatch):
    real_check = trainer_module.check_finite

    def killed_at_step_10(loss, step, hint=""):
        if step == 10:
            raise KeyboardInterrupt
        real_check(loss, step, hint)

    monkeypatch.setattr(trainer_module, "check_finite", killed_at_step_10)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, shards, PHASED)
    monkeypatch.setattr(trainer_module, "check_finite", real_check)
    assert _run(tmp_path, shards, PHASED)["steps"] == 10  # resumed inside the phase, at step 9
    reference = load_file(phased[0] / "models" / "vae" / "diffusion_pytorch_model.safetensors")
    resumed = load_file(tmp_path / "models" / "vae" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
