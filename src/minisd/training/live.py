"""DVCLive at explicit step numbers, never touching dvc.yaml, reproducible byte for byte.

Metrics are logged at the optimizer step they belong to (not DVCLive's own counter), so a run
resumed from a checkpoint continues the same curves; no timestamps, so reruns are identical.
"""

from __future__ import annotations

from pathlib import Path

from dvclive import Live


class TrainingLog:
    def __init__(self, directory: Path | str, resume: bool = False):
        self.live = Live(str(directory), dvcyaml=None, resume=resume, save_dvc_exp=False, report=None)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.live.step = step
        for name, value in values.items():
            self.live.log_metric(name, float(value))
        self.live.make_summary()

    def image(self, step: int, name: str, image) -> None:
        """Logged as plots/images/<name>/<step>.png: a step-numbered series DVC shows as a slider."""
        self.live.step = step
        self.live.log_image(f"{name}/{step:06d}.png", image)

    def summary(self, values: dict[str, float]) -> None:
        """Final numbers for metrics.json without a curve point (e.g. the final val loss)."""
        self.live.summary.update({k: float(v) for k, v in values.items()})
        self.live.make_summary()

    def end(self) -> None:
        self.live.end()
