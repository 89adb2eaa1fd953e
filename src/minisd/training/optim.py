"""What moves and averages the weights: the optimizer every trainer uses, the learning-rate schedule,
and the EMA weights swapped in for validation (the exported weights are the EMA ones, so they are
the ones worth measuring)."""

from __future__ import annotations

from contextlib import contextmanager

import torch


def adamw(params, lr: float, weight_decay: float = 0.0, **options) -> torch.optim.AdamW:
    """AdamW on torch's fused kernel: one pass over every parameter instead of a Python loop of small
    ops per parameter (the default UNet's optimizer step 21 -> 3 ms of a 280 ms bf16 CPU step; README,
    performance). It pairs a parameter with its moments by memory order, so a checkpoint must give the
    moments back in the parameter's layout: `CheckpointManager.restore` does."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True, **options)


_KINDS = {"cosine": "cosine", "constant": "constant_with_warmup"}


def make_lr_scheduler(optimizer, kind: str, warmup_steps: int, total_steps: int):
    """Linear warmup then cosine decay to 0 (or constant) over `total_steps` optimizer steps.

    Step it once per optimizer step yourself; do not pass it to `accelerator.prepare`, which
    would step it once per process and shorten the schedule by the number of processes.
    """
    if kind not in _KINDS:
        raise ValueError(f"lr schedule must be one of {sorted(_KINDS)}, got {kind!r}")
    # imported here: `import diffusers` pulls in torch._dynamo (about 1.2 s), which a stage that needs
    # nothing else of diffusers (train_judge) should not pay at every start
    from diffusers.optimization import get_scheduler

    return get_scheduler(
        _KINDS[kind], optimizer, num_warmup_steps=warmup_steps, num_training_steps=max(total_steps, 1)
    )


@contextmanager
def evaluating(module):
    """eval() for the block, then back to the mode it was in."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


@contextmanager
def ema_weights(ema, parameters):
    """The EMA's weights in `parameters` for the block, the trained ones back after (no EMA: no swap)."""
    if ema is None:
        yield
        return
    parameters = list(parameters)
    ema.store(parameters)
    try:
        ema.copy_to(parameters)
        yield
    finally:
        ema.restore(parameters)
