"""Learning-rate schedule and the wall-clock budget: when and how fast a run trains."""

from __future__ import annotations

import time

from diffusers.optimization import get_scheduler

_KINDS = {"cosine": "cosine", "constant": "constant_with_warmup"}


def make_lr_scheduler(optimizer, kind: str, warmup_steps: int, total_steps: int):
    """Linear warmup then cosine decay to 0 (or constant) over `total_steps` optimizer steps.

    Step it once per optimizer step yourself; do not pass it to `accelerator.prepare`, which
    would step it once per process and shorten the schedule by the number of processes.
    """
    if kind not in _KINDS:
        raise ValueError(f"lr schedule must be one of {sorted(_KINDS)}, got {kind!r}")
    return get_scheduler(
        _KINDS[kind], optimizer, num_warmup_steps=warmup_steps, num_training_steps=max(total_steps, 1)
    )


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
