"""Stop on a non-finite loss before it reaches the weights or a checkpoint."""

from __future__ import annotations

import torch

from minisd.stage import StageError


class NonFiniteLossError(StageError):
    """The loss became NaN/inf; training stops and the last good checkpoint is kept."""


def check_finite(loss: torch.Tensor | float, step: int, hint: str = "") -> None:
    value = loss.detach().float() if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
    if not bool(torch.isfinite(value).all()):
        shown = value.item() if value.numel() == 1 else value.tolist()
        raise NonFiniteLossError(
            f"non-finite loss at step {step} ({shown}); stopped before the update, the last good checkpoint "
            f"is kept{': ' + hint if hint else ''} (try a lower lr, grad_clip, or mixed_precision: no)"
        )
