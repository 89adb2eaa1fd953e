"""Shared training infra: checkpoints (round trip, retention, atomicity), fingerprint, guards."""

import json
import random

import numpy as np
import pytest
import torch
from diffusers.training_utils import EMAModel

from minisd.stage import StageError
from minisd.training.checkpoints import CheckpointManager, fingerprint_inputs
from minisd.training.loop import check_finite, NonFiniteLossError, WallClockBudget
from minisd.training.precision import resolve_mixed_precision
from minisd.training.optim import adamw, make_lr_scheduler


def _setup(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = make_lr_scheduler(opt, "cosine", warmup_steps=2, total_steps=20)
    ema = EMAModel(model.parameters(), decay=0.9, use_ema_warmup=True)
    return model, opt, sched, ema


def _train(model, opt, sched, ema, steps):
    for _ in range(steps):
        x = torch.randn(5, 4)  # global RNG: tests that its state is restored too
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        sched.step()
        ema.step(model.parameters())


def _objects(model, opt, sched, ema):
    return {"model": model, "ema": ema, "optimizer": opt, "lr_scheduler": sched}


def test_round_trip_restores_everything_and_continues_identically(tmp_path):
    model, opt, sched, ema = _setup()
    _train(model, opt, sched, ema, 3)
    mgr = CheckpointManager("toy", {"a": 1}, keep=2, root=tmp_path)
    random.seed(5)
    np.random.seed(6)
    mgr.save(3, _objects(model, opt, sched, ema), {"position": 15})
    _train(model, opt, sched, ema, 4)
    expected = ([p.clone() for p in model.parameters()], [p.clone() for p in ema.shadow_params],
                sched.get_last_lr(), random.random(), np.random.rand())

    model2, opt2, sched2, ema2 = _setup(seed=1)  # different init: everything must come from disk
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    step, extra = mgr.restore(_objects(model2, opt2, sched2, ema2))
    assert (step, extra) == (3, {"position": 15})
    assert opt2.state_dict()["param_groups"][0]["betas"] == opt.state_dict()["param_groups"][0]["betas"]
    _train(model2, opt2, sched2, ema2, 4)
    got = ([p for p in model2.parameters()], ema2.shadow_params, sched2.get_last_lr(), random.random(),
           np.random.rand())
    for a, b in zip(expected[0] + expected[1], got[0] + got[1]):
        assert torch.equal(a, b)
    assert expected[2:] == got[2:]


def test_fused_adamw_resumes_exactly_on_channels_last_weights(tmp_path):
    """Fused AdamW pairs weights and moments by memory order; restored moments come back contiguous, so
    without relayout a channels_last conv would be updated with other elements' moments."""
    def setup(seed):
        torch.manual_seed(seed)
        net = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
        return net, adamw(net.parameters(), lr=1e-2)

    def train(net, opt, steps):
        for i in range(steps):
            x = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(i))
            net(x).pow(2).mean().backward()
            opt.step()
            opt.zero_grad()

    net, opt = setup(0)
    train(net, opt, 2)
    mgr = CheckpointManager("toy", {"a": 1}, keep=1, root=tmp_path)
    mgr.save(2, {"model": net, "optimizer": opt})
    train(net, opt, 3)
    net2, opt2 = setup(1)
    mgr.restore({"model": net2, "optimizer": opt2})
    moments = opt2.state[net2.weight]["exp_avg"]
    assert moments.stride() == net2.weight.stride() != net2.weight.contiguous().stride()
    train(net2, opt2, 3)
    assert torch.equal(net.weight, net2.weight) and torch.equal(net.bias, net2.bias)


def test_no_pickles_only_json_and_safetensors(tmp_path):
    model, opt, sched, ema = _setup()
    _train(model, opt, sched, ema, 1)
    mgr = CheckpointManager("toy", {"a": 1}, keep=1, root=tmp_path)
    folder = mgr.save(1, _objects(model, opt, sched, ema))
    assert sorted(p.name for p in folder.iterdir()) == ["state.json", "tensors.safetensors"]
    json.loads((folder / "state.json").read_text())


def test_retention_keeps_latest(tmp_path):
    model, opt, sched, ema = _setup()
    mgr = CheckpointManager("toy", {"a": 1}, keep=2, root=tmp_path)
    for step in (1, 2, 3, 4):
        mgr.save(step, {"model": model})
    assert mgr.steps() == [3, 4]
    mgr.clear()
    assert not mgr.folder.exists() and mgr.restore({"model": model}) is None


def test_half_written_checkpoints_are_ignored(tmp_path):
    model, opt, sched, ema = _setup()
    mgr = CheckpointManager("toy", {"a": 1}, keep=3, root=tmp_path)
    mgr.save(2, {"model": model}, {"tag": "good"})
    # a save killed mid-way leaves a temp folder; a step folder without state.json; a truncated state
    (mgr.folder / ".tmp-step-00000009-123").mkdir()
    (mgr.folder / ".tmp-step-00000009-123" / "tensors.safetensors").write_bytes(b"garbage")
    (mgr.folder / "step-00000007").mkdir()
    (mgr.folder / "step-00000007" / "tensors.safetensors").write_bytes(b"garbage")
    bad = mgr.folder / "step-00000008"
    bad.mkdir()
    (bad / "tensors.safetensors").write_bytes(b"garbage")
    (bad / "state.json").write_text('{"step": 8, "ext')
    assert mgr.steps() == [2, 8]
    assert mgr.restore({"model": model}) == (2, {"tag": "good"})
    mgr.save(3, {"model": model})
    assert not list(mgr.folder.glob(".tmp-*"))


def test_folder_depends_on_fingerprint(tmp_path):
    a = CheckpointManager("unet", {"lr": 1e-3, "inputs": {"x": "1"}}, keep=1, root=tmp_path)
    b = CheckpointManager("unet", {"lr": 2e-3, "inputs": {"x": "1"}}, keep=1, root=tmp_path)
    c = CheckpointManager("unet", {"inputs": {"x": "1"}, "lr": 1e-3}, keep=1, root=tmp_path)
    assert a.folder != b.folder and a.folder == c.folder and a.folder.name.startswith("unet-")


def test_fingerprint_inputs_follows_content(tmp_path):
    d = tmp_path / "cache"
    (d / "sub").mkdir(parents=True)
    (d / "a.bin").write_bytes(b"abc")
    (d / "sub" / "b.bin").write_bytes(b"xyz")
    first = fingerprint_inputs([d])
    assert first == fingerprint_inputs([d])
    (d / "sub" / "b.bin").write_bytes(b"xyw")
    assert fingerprint_inputs([d]) != first
    with pytest.raises(FileNotFoundError, match="missing"):
        fingerprint_inputs([tmp_path / "missing"])


def test_check_finite_names_step():
    check_finite(torch.tensor(1.0), 3)
    with pytest.raises(NonFiniteLossError, match="step 17") as info:
        check_finite(torch.tensor(float("nan")), 17)
    assert isinstance(info.value, StageError)


def test_budget_and_precision_and_schedule():
    now = [0.0]
    budget = WallClockBudget(1.0, clock=lambda: now[0])
    assert not budget.exhausted()
    now[0] = 61.0
    assert budget.exhausted() and not WallClockBudget(None).exhausted()
    resumed = WallClockBudget(1.0, clock=lambda: now[0], spent_minutes=0.9)  # carried over from a killed run
    assert not resumed.exhausted()
    now[0] += 7.0
    assert resumed.exhausted()
    assert resolve_mixed_precision("no", "cpu") == "no"
    assert resolve_mixed_precision("auto", "cpu") in ("no", "bf16")
    with pytest.raises(StageError, match="fp16"):
        resolve_mixed_precision("fp16", "cpu")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_lr_scheduler(opt, "cosine", warmup_steps=2, total_steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == 0.0 and lrs[2] == pytest.approx(1.0) and lrs[-1] < 0.1


def test_files_travel_with_the_checkpoint(tmp_path):
    model, *_ = _setup()
    live = tmp_path / "live"
    (live / "plots").mkdir(parents=True)
    (live / "plots" / "loss.tsv").write_text("step\tloss\n1\t0.5\n")
    mgr = CheckpointManager("toy", {"a": 1}, keep=1, root=tmp_path / "ckpt")
    mgr.save(1, {"model": model}, files={"live": live})
    (live / "plots" / "loss.tsv").write_text("step\tloss\n1\t0.5\n2\t0.4\n")  # logged after the checkpoint
    assert mgr.restore({"model": model}, files={"live": live}) == (1, {})
    assert (live / "plots" / "loss.tsv").read_text() == "step\tloss\n1\t0.5\n"


# ----------------------------------------------------------------------------- fit's contract, once, on a toy


class ToyTrainer:
    """The smallest trainer `fit` runs: a linear fit to fixed data; `poison` makes one step's loss NaN."""

    def __init__(self, steps: int, out, poison: int | None = None, kill: int | None = None):
        torch.manual_seed(0)
        self.model = torch.nn.Linear(3, 1)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=0.05)
        self.lr_scheduler = make_lr_scheduler(self.optimizer, "cosine", 2, steps)
        self.out, self.poison, self.kill, self.exports = out, poison, kill, 0

    def state(self):
        return {"model": self.model, "optimizer": self.optimizer, "lr_scheduler": self.lr_scheduler}

    def step(self, step):
        if step == self.kill:
            raise KeyboardInterrupt  # what a kill mid-run looks like to the loop
        x = torch.randn(8, 3)  # the global RNG: checkpoints must restore it for an exact resume
        loss = (self.model(x) - x.sum(1, keepdim=True)).pow(2).mean() * (float("nan") if step == self.poison else 1)
        check_finite(loss, step + 1)
        loss.backward()
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad()
        return {"loss": loss.item()}

    def log_extras(self, step):
        return {"epoch": step / 4}

    def validate(self, step, live, final):
        return {"val/weight": float(self.model.weight.detach().sum())}

    def export(self, step):
        self.exports += 1
        torch.save(self.model.state_dict(), self.out)  # a test artifact, never shipped
        return {"steps": step}


def _fit(tmp_path, name, steps=12, max_minutes=None, **toy):
    from accelerate import Accelerator

    from minisd.training.loop import Schedule, fit

    accelerator = Accelerator(cpu=True)
    checkpoints = CheckpointManager("toy", {"steps": steps}, keep=2, root=tmp_path / name / "ckpt",
                                    accelerator=accelerator)
    trainer = ToyTrainer(steps, tmp_path / name / "model.pt", **toy)
    (tmp_path / name).mkdir(exist_ok=True)
    result = fit(trainer, Schedule(steps, 8, log_every=3, val_every=4, checkpoint_every=4, max_minutes=max_minutes),
                 accelerator, checkpoints, tmp_path / name / "live", "toy")
    return result, trainer, checkpoints


def test_fit_resumes_a_killed_run_step_exactly_and_clears_its_checkpoints(tmp_path):
    whole, _, done = _fit(tmp_path, "whole")
    assert whole.step == 12 and whole.metrics["steps"] == 12 and not done.folder.exists()
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, "resumed", kill=10)  # after the checkpoints at 4 and 8; a half log window open
    resumed, trainer, checkpoints = _fit(tmp_path, "resumed")
    assert resumed.metrics == whole.metrics and trainer.exports == 1 and not checkpoints.folder.exists()
    a, b = (torch.load(tmp_path / name / "model.pt") for name in ("whole", "resumed"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    for curve in ("train/loss.tsv", "train/lr.tsv", "epoch.tsv", "val/weight.tsv"):
        path = f"live/plots/metrics/{curve}"
        assert (tmp_path / "whole" / path).read_text() == (tmp_path / "resumed" / path).read_text(), curve
    replica = make_lr_scheduler(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.05), "cosine", 2, 12)
    used = []  # the rate each step trained with
    for _ in range(12):
        used.append(replica.get_last_lr()[0])
        replica.optimizer.step()
        replica.step()
    lr = (tmp_path / "whole" / "live/plots/metrics/train/lr.tsv").read_text().split()
    assert lr[2::2] == ["3", "6", "9", "12"] and [float(v) for v in lr[3::2]] == [used[s - 1] for s in (3, 6, 9, 12)]


def test_fit_stops_at_a_non_finite_loss_keeping_the_last_good_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError, match="step 7"):
        _fit(tmp_path, "nan", poison=6)
    nan_checkpoints = CheckpointManager("toy", {"steps": 12}, keep=2, root=tmp_path / "nan" / "ckpt")
    assert nan_checkpoints.steps() == [4] and not (tmp_path / "nan" / "model.pt").exists()


def test_fit_budget_stops_early_and_still_exports(tmp_path):
    result, trainer, _ = _fit(tmp_path, "budget", max_minutes=1e-9)
    assert result.step == 0 and trainer.exports == 1 and (tmp_path / "budget" / "model.pt").is_file()
