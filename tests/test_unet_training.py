"""The UNet trainer on a tiny synthetic config: learning, EMA export, exact resume (its data stream and
EMA are in its state), NaN stop (its step guards its loss). The wall-clock budget and the rest of
`fit`'s contract are tested once, on a toy trainer, in tests/test_training.py."""

import pytest
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from safetensors.torch import load_file

from minisd.unet.model import build_unet
from minisd.training.checkpoints import CheckpointManager
from minisd.training.loop import NonFiniteLossError
from minisd.training.precision import make_accelerator
from minisd.unet.data import DataOrder
from minisd.unet.diffusion import make_noise_scheduler
from minisd.unet.preview import Preview
from minisd.unet.trainer import Outputs, fit_unet
from minisd.unet.validation import FixedValidation
from _tiny_models import tiny_vae
from _unet import synthetic_split, tiny_params


@pytest.fixture
def accelerator():
    return make_accelerator("no")  # fp32 on both CPU kinds: the same numbers, so the same thresholds, everywhere


def _outputs(root):
    return Outputs(root / "unet", root / "scheduler", root / "live")


def _weights(folder):
    return load_file(str(folder / "diffusion_pytorch_model.safetensors"))


def test_loss_decreases_and_exports_loadable_models(tmp_path, accelerator):
    params = tiny_params(max_steps=120, val_every=120, sample_every=60, sample_prompts=2, lr=5e-3)
    train, val = synthetic_split(), synthetic_split(16, seed=1)
    untrained = build_unet(params, 16, 4).eval()
    before = FixedValidation(val, 1000, params.val_samples, 8).loss(untrained, make_noise_scheduler(
        params.noise_scheduler), torch.device("cpu"))
    preview = Preview(tiny_vae(), train.embeddings[[0, 2]].float(), train.embeddings[-1].float(), [0, 1], 4, 3.0)
    result = fit_unet(params, train, val, _outputs(tmp_path), accelerator=accelerator, preview=preview)
    assert result.step == 120
    # v-prediction with zero-terminal SNR (the shipped recipe) keeps an irreducible part at pure
    # noise, so its val loss falls less than epsilon's did (measured 1.12 -> 0.85 here)
    assert result.metrics["val/loss"] < 0.85 * before, (before, result.metrics)
    unet = UNet2DConditionModel.from_pretrained(tmp_path / "unet")
    assert unet.config.cross_attention_dim == 16 and unet.config.sample_size == 8
    sched = DDPMScheduler.from_pretrained(tmp_path / "scheduler")
    assert sched.config.prediction_type == "v_prediction" and sched.config.clip_sample is False  # the shipped recipe
    grids = sorted(p.name for p in (tmp_path / "live" / "plots" / "images" / "samples").iterdir())
    assert grids == ["000060.png", "000120.png"]
    assert '"final_val_loss"' in (tmp_path / "live" / "metrics.json").read_text()


def test_ema_is_exported_and_differs_from_raw(tmp_path, accelerator):
    """Recompute the EMA independently from the raw weights after every step; compare with the export."""
    params = tiny_params(max_steps=6, ema_decay=0.9, ema_power=0.75)
    mine = {}

    def on_step(step, raw):
        decay = 0.0 if step - 1 <= 0 else min(1 - (1 + (step - 1)) ** -0.75, 0.9)
        for name, p in raw.named_parameters():
            prev = mine.get(name, p.detach().clone())
            mine[name] = decay * prev + (1 - decay) * p.detach()

    result = fit_unet(params, synthetic_split(), None, _outputs(tmp_path), accelerator=accelerator, on_step=on_step)
    saved = _weights(tmp_path / "unet")
    assert any(not torch.equal(saved[k], result.raw_state[k]) for k in mine)
    for name, value in mine.items():
        assert torch.allclose(saved[name], value, atol=1e-6), name


def test_ink_weight_reaches_the_trainers_loss(tmp_path, accelerator):
    """unet.ink_weight > 0 trains through the weighted loss (weights indexed per batch); 0 is the plain one."""
    runs = {w: fit_unet(tiny_params(max_steps=3, ink_weight=w), synthetic_split(), None, _outputs(tmp_path / str(w)),
                        accelerator=accelerator).raw_state for w in (0.0, 4.0)}  # fmt: skip
    assert any(not torch.equal(runs[0.0][k], runs[4.0][k]) for k in runs[0.0])


class _Killed(Exception):
    pass


def test_resume_after_interruption_is_step_exact(tmp_path, accelerator):
    params = tiny_params(max_steps=8, checkpoint_every=2, val_every=4, log_every=3, channels_last=True)
    train, val = synthetic_split(), synthetic_split(16, seed=1)
    seen_a, seen_b = [], []
    fit_unet(params, train, val, _outputs(tmp_path / "a"), accelerator=accelerator,
             on_batch=lambda step, idx, rows: seen_a.append((step, idx.tolist(), rows.tolist())))

    ckpt = CheckpointManager("t", {"x": 1}, keep=2, root=tmp_path / "ckpt", accelerator=accelerator)

    def killer(step, idx, rows):
        if step == 5:  # mid-way between the checkpoints at 4 and 6: step 5 never completes
            raise _Killed
        seen_b.append((step, idx.tolist(), rows.tolist()))

    with pytest.raises(_Killed):
        fit_unet(params, train, val, _outputs(tmp_path / "b"), accelerator=accelerator, checkpoints=ckpt,
                 on_batch=killer)
    assert ckpt.steps() == [2, 4]
    resumed = fit_unet(params, train, val, _outputs(tmp_path / "b"), accelerator=accelerator, checkpoints=ckpt,
                       on_batch=lambda step, idx, rows: seen_b.append((step, idx.tolist(), rows.tolist())))
    assert resumed.step == 8
    # steps 0-4 ran before the kill, 4 ran again (it was after the last checkpoint), 5-7 after the resume
    assert [s for s, *_ in seen_b] == [0, 1, 2, 3, 4, 4, 5, 6, 7]
    assert seen_b[:5] + seen_b[6:] == seen_a  # same data order, same captions, nothing replayed
    a, b = _weights(tmp_path / "a" / "unet"), _weights(tmp_path / "b" / "unet")
    assert all(torch.equal(a[k], b[k]) for k in a)  # bitwise: CPU kernels are deterministic here
    for curve in ("train/loss.tsv", "val/loss.tsv", "train/lr.tsv"):
        path = "live/plots/metrics/" + curve
        assert (tmp_path / "a" / path).read_text() == (tmp_path / "b" / path).read_text(), curve
    assert not ckpt.folder.exists()  # a finished run clears its checkpoints


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_checkpoint(tmp_path, accelerator):
    params = tiny_params(max_steps=20, checkpoint_every=2)
    train = synthetic_split()
    order = DataOrder(len(train), params.batch_size, params.seed)
    bad = int(order.indices(5)[0])  # first seen in step 6 (1-based)
    assert all(bad not in order.indices(m).tolist() for m in range(5))
    train.mean[bad] = float("nan")
    ckpt = CheckpointManager("t", {"x": 1}, keep=2, root=tmp_path / "ckpt", accelerator=accelerator)
    with pytest.raises(NonFiniteLossError, match="step 6"):
        fit_unet(params, train, None, _outputs(tmp_path), accelerator=accelerator, checkpoints=ckpt)
    assert ckpt.steps() == [2, 4]
    model = build_unet(params, 16, 4)
    step, _ = ckpt.restore({"model": model})
    assert step == 4 and all(torch.isfinite(p).all() for p in model.parameters())
    assert not (tmp_path / "unet").exists()
