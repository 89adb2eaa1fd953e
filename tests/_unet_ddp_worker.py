"""Run by test_unet_ddp.py under `accelerate launch --num_processes 2` on CPU (gloo)."""

import json
import sys
from pathlib import Path

import logging

import torch

from minisd.training.checkpoints import CheckpointManager
from minisd.training.precision import make_accelerator
from minisd.unet.trainer import Outputs, fit_unet
from _unet import class_teacher, synthetic_split, tiny_params

logging.basicConfig(level=logging.INFO)
out = Path(sys.argv[1])
torch.set_num_threads(1)
accelerator = make_accelerator("no")
params = tiny_params(max_steps=4, checkpoint_every=2, val_every=2, repa_weight=0.5)  # the projector under DDP too
seen = []
checkpoints = CheckpointManager("ddp", {"x": 1}, keep=2, root=out / "ckpt", accelerator=accelerator)
fit_unet(params, synthetic_split(), synthetic_split(16, seed=1), Outputs(out / "unet", out / "scheduler", out / "live"),
         accelerator=accelerator, checkpoints=checkpoints,
         on_batch=lambda step, idx, rows: seen.append(idx.tolist()), teacher=class_teacher(48))
rank = accelerator.process_index
(out / f"seen-{rank}.json").write_text(json.dumps({"world": accelerator.num_processes, "seen": seen}))
