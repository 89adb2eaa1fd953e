"""One outline for every trainer: setup, then step -> log -> validate -> checkpoint, then export.

A trainer supplies the parts that differ (what a step, a validation and the export are); `fit`
owns what is the same everywhere: resume from the newest checkpoint of the same configuration,
the progress bar, DVCLive logging at explicit steps, the opt-in wall-clock budget agreed by all
processes, periodic checkpoints, and clearing them once the run has finished. Below it, the parts
it uses (the DVCLive log, the budget) and the guard every trainer's step calls (check_finite).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from dvclive import Live
from tqdm.auto import tqdm

from minisd.stage import StageError
from minisd.training.checkpoints import CheckpointManager

log = logging.getLogger("minisd.training")


class Trainer(Protocol):
    lr_scheduler: object  # get_last_lr(): fit logs the rate each logged step trained with, as train/lr

    def state(self) -> dict:
        """Objects with state_dict()/load_state_dict() that a checkpoint saves and restores."""

    def step(self, step: int) -> dict[str, float]:
        """One optimizer step (0-based index); scalars averaged over the log window as train/<name>."""

    def log_extras(self, step: int) -> dict[str, float]:
        """Values logged as they are at a logging step (e.g. the epoch), under these names."""

    def validate(self, step: int, live: TrainingLog, final: bool) -> dict[str, float]:
        """Main process only: metrics (logged at `step`); may log images to `live`. Called at
        every `val_every` and `sample_every`, and once at the end with final=True."""

    def export(self, step: int) -> dict:
        """Main process only: write the stage's model outputs; returns numbers for metrics.json."""


@dataclass
class Schedule:
    max_steps: int
    samples_per_step: int  # for the samples/s shown on the bar (all processes together)
    log_every: int
    val_every: int
    checkpoint_every: int
    max_minutes: float | None = None
    sample_every: int | None = None  # previews: validate() is also called at these steps

    @classmethod
    def from_params(cls, params, samples_per_step: int, sample_every: int | None = None) -> Schedule:
        """From a `params.base.LoopParams` section; samples_per_step counts every process's samples."""
        return cls(params.max_steps, samples_per_step, params.log_every, params.val_every, params.checkpoint_every,
                   params.max_minutes, sample_every)


@dataclass
class FitResult:
    step: int  # steps done: < max_steps only when the wall-clock budget stopped the run
    metrics: dict  # the final validation and export's numbers (main process; empty elsewhere)


def fit(trainer: Trainer, schedule: Schedule, accelerator, checkpoints: CheckpointManager | None,
        live_dir: Path | str, desc: str) -> FitResult:
    main = accelerator.is_main_process
    state = trainer.state()
    files = {"live": Path(live_dir)} if main else None
    restored = checkpoints.restore(state, files=files) if checkpoints else None
    step, extra = restored if restored else (0, {})
    if restored:
        log.info("%s: resuming at step %d of %d", desc, step, schedule.max_steps)
    live = TrainingLog(live_dir, resume=restored is not None) if main else None
    budget = WallClockBudget(schedule.max_minutes, spent_minutes=float(extra.get("minutes", 0.0)))
    window: dict[str, float] = dict(extra.get("window", {}))  # a half-filled log window continues exactly
    bar = tqdm(total=schedule.max_steps, initial=step, desc=desc, unit="step", disable=not main, dynamic_ncols=True)
    started, start_step = time.perf_counter(), step

    def validates_at(at: int) -> bool:
        return at % schedule.val_every == 0 or bool(schedule.sample_every and at % schedule.sample_every == 0)

    while step < schedule.max_steps:
        if budget_spent(budget, accelerator):
            log.warning("%s: wall-clock budget of %s min reached at step %d of %d: stopping early",
                        desc, schedule.max_minutes, step, schedule.max_steps)
            break
        lr = trainer.lr_scheduler.get_last_lr()[0]  # the rate this step trains with
        scalars = trainer.step(step)
        step += 1
        for name, value in scalars.items():
            window[name] = window.get(name, 0.0) + value
        window["_n"] = window.get("_n", 0) + 1
        rate = (step - start_step) * schedule.samples_per_step / max(time.perf_counter() - started, 1e-9)
        bar.update(1)
        bar.set_postfix(loss=f"{scalars.get('loss', float('nan')):.4f}", samples_s=f"{rate:.1f}", refresh=False)
        if step % schedule.log_every == 0 or step == schedule.max_steps:
            n = window.pop("_n")
            if main:
                live.metrics(step, {**{f"train/{name}": total / n for name, total in window.items()},
                                    "train/lr": lr, **trainer.log_extras(step)})
            window = {}
        if step < schedule.max_steps and validates_at(step):
            if main:
                metrics = trainer.validate(step, live, final=False)
                if metrics:  # none at a preview-only step
                    live.metrics(step, metrics)
            accelerator.wait_for_everyone()
        if checkpoints and step < schedule.max_steps and step % schedule.checkpoint_every == 0:
            checkpoints.save(step, state, {"minutes": budget.elapsed_minutes(), "window": window}, files=files)
    bar.close()

    metrics: dict = {}
    if main:
        metrics = trainer.validate(step, live, final=True)
        if metrics:
            live.metrics(step, metrics)
        summary = trainer.export(step)
        if summary:
            live.summary(summary)
        live.end()
        metrics = {**metrics, **summary}
    accelerator.wait_for_everyone()
    if checkpoints:
        checkpoints.clear()
    return FitResult(step, metrics)


class TrainingLog:
    """DVCLive at explicit step numbers, never touching dvc.yaml, reproducible byte for byte.

    Metrics are logged at the optimizer step they belong to (not DVCLive's own counter), so a run
    resumed from a checkpoint continues the same curves; no timestamps, so reruns are identical.
    """

    def __init__(self, directory: Path | str, resume: bool = False):
        self.live = Live(str(directory), dvcyaml=None, resume=resume, save_dvc_exp=False, report=None)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.live.step = step
        for name, value in values.items():
            self.live.log_metric(name, float(value))
        self.live.make_summary()

    def image(self, step: int, name: str, image, series: bool = True) -> None:
        """series: plots/images/<name>/<step>.png, a step-numbered series DVC shows as a slider;
        else plots/images/<name>.png, the latest only."""
        self.live.step = step
        self.live.log_image(f"{name}/{step:06d}.png" if series else f"{name}.png", image)

    def summary(self, values: dict) -> None:
        """Final numbers for metrics.json without a curve point (e.g. the final val loss)."""
        self.live.summary.update(values)
        self.live.make_summary()

    def end(self) -> None:
        self.live.end()


class WallClockBudget:
    """Stops a run after `max_minutes` (None = unlimited), counted from construction.

    `spent_minutes` carries the time of an interrupted attempt over to its resumed run.
    """

    def __init__(self, max_minutes: float | None, clock=time.monotonic, spent_minutes: float = 0.0):
        self.max_minutes = max_minutes
        self._clock = clock
        self._start = clock() - 60.0 * spent_minutes

    def elapsed_minutes(self) -> float:
        return (self._clock() - self._start) / 60.0

    def exhausted(self) -> bool:
        return self.max_minutes is not None and self.elapsed_minutes() >= self.max_minutes


def budget_spent(budget: WallClockBudget, accelerator) -> bool:
    """All processes stop at the same step (any one out of time stops all), or DDP would hang.
    Without a budget nothing is asked: no collective and no device sync per step."""
    if budget.max_minutes is None:
        return False
    over = torch.tensor(float(budget.exhausted()), device=accelerator.device)
    return accelerator.reduce(over, "sum").item() > 0


class NonFiniteLossError(StageError):
    """The loss became NaN/inf; training stops and the last good checkpoint is kept."""


def check_finite(loss: torch.Tensor | float, step: int, hint: str = "") -> None:
    """Stop on a non-finite loss before it reaches the weights or a checkpoint."""
    value = loss.detach().float() if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
    if not bool(torch.isfinite(value).all()):
        shown = value.item() if value.numel() == 1 else value.tolist()
        raise NonFiniteLossError(
            f"non-finite loss at step {step} ({shown}); stopped before the update, the last good checkpoint "
            f"is kept{': ' + hint if hint else ''} (try a lower lr, grad_clip, or mixed_precision: no)"
        )
