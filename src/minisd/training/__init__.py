"""Shared training infrastructure for every trainer (train_vae, train_unet): see contracts.md."""

from minisd.training.checkpoints import CheckpointManager, fingerprint_inputs
from minisd.training.guards import NonFiniteLossError, check_finite
from minisd.training.precision import make_accelerator, resolve_mixed_precision
from minisd.training.schedule import WallClockBudget, make_lr_scheduler

__all__ = [
    "CheckpointManager",
    "NonFiniteLossError",
    "WallClockBudget",
    "check_finite",
    "fingerprint_inputs",
    "make_accelerator",
    "make_lr_scheduler",
    "resolve_mixed_precision",
]
