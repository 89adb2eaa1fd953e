"""One outline for every trainer: setup, then step -> log -> validate -> checkpoint, then export.

A trainer supplies the parts that differ (what a step, a validation and the export are); `fit`
owns what is the same everywhere: resume from the newest checkpoint of the same configuration,
the progress bar, DVCLive logging at explicit steps, the opt-in wall-clock budget agreed by all
processes, periodic checkpoints, and clearing them once the run has finished.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from tqdm.auto import tqdm

from minisd.training.checkpoints import CheckpointManager
from minisd.training.live import TrainingLog
from minisd.training.schedule import WallClockBudget

log = logging.getLogger("minisd.training")


class Trainer(Protocol):
    def state(self) -> dict:
        """Objects with state_dict()/load_state_dict() that a checkpoint saves and restores."""

    def step(self, step: int) -> dict[str, float]:
        """One optimizer step (0-based index); returns scalars for the log, "loss" among them."""

    def validate(self, step: int, live: TrainingLog) -> dict[str, float]:
        """Main process only: metrics (logged at `step`); may log images to `live`."""

    def export(self, step: int) -> None:
        """Main process only: write the stage's model outputs."""


@dataclass
class Schedule:
    max_steps: int
    samples_per_step: int  # for the samples/s shown on the bar (all processes together)
    log_every: int
    val_every: int
    checkpoint_every: int
    max_minutes: float | None = None


@dataclass
class FitResult:
    step: int  # steps done: < max_steps only when the wall-clock budget stopped the run
    metrics: dict[str, float]  # the final validation (main process; empty elsewhere)


def _budget_spent(budget: WallClockBudget, accelerator) -> bool:
    """All processes stop at the same step: any one out of time stops all."""
    over = torch.tensor(float(budget.exhausted()), device=accelerator.device)
    return accelerator.reduce(over, "sum").item() > 0


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

    while step < schedule.max_steps:
        if _budget_spent(budget, accelerator):
            log.warning("%s: wall-clock budget of %s min reached at step %d of %d: stopping early",
                        desc, schedule.max_minutes, step, schedule.max_steps)
            break
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
                live.metrics(step, {f"train/{name}": total / n for name, total in window.items()})
            window = {}
        if step < schedule.max_steps and step % schedule.val_every == 0:
            if main:
                live.metrics(step, trainer.validate(step, live))
            accelerator.wait_for_everyone()
        if checkpoints and step < schedule.max_steps and step % schedule.checkpoint_every == 0:
            checkpoints.save(step, state, {"minutes": budget.elapsed_minutes(), "window": window}, files=files)
    bar.close()

    metrics: dict[str, float] = {}
    if main:
        metrics = trainer.validate(step, live)
        live.metrics(step, metrics)
        trainer.export(step)
        live.end()
    accelerator.wait_for_everyone()
    if checkpoints:
        checkpoints.clear()
    return FitResult(step, metrics)
