"""Run by test_unet_resume.py: trains the tiny config, SIGKILLs itself mid-step when asked."""

import logging
import os
import signal
import sys
from pathlib import Path

import torch

from minisd.training.checkpoints import CheckpointManager
from minisd.training.precision import make_accelerator
from minisd.unet.trainer import Outputs, fit_unet
from _unet import resume_params, synthetic_split

out, kill_at = Path(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(1)
logging.basicConfig(level=logging.INFO)


def on_batch(step, indices, rows):
    if step == kill_at:  # inside a step, after the last checkpoint: like `kill -9` from outside
        os.kill(os.getpid(), signal.SIGKILL)


accelerator = make_accelerator("no")
checkpoints = CheckpointManager("resume", {"x": 1}, keep=2, root=out / "ckpt", accelerator=accelerator)
fit_unet(resume_params(), synthetic_split(), synthetic_split(16, seed=1),
         Outputs(out / "unet", out / "scheduler", out / "live"), accelerator=accelerator, checkpoints=checkpoints,
         on_batch=on_batch)
