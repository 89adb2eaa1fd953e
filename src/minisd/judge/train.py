"""Train the judge on the train shards' class labels; report its val accuracy so its verdicts can be trusted."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from dvclive import Live

from minisd import paths
from minisd.params.judge import JudgeParams
from minisd.judge.augment import augment_batch
from minisd.judge.model import CONFIG, Judge, JudgeNet, prepare
from minisd.shards import iter_samples
from minisd.stage import StageError
from minisd.training.checkpoints import CheckpointManager
from minisd.training.loop import Schedule, check_finite, fit
from minisd.training.optim import adamw, evaluating
from minisd.training.precision import make_accelerator
from minisd.training.rng import GeneratorState

log = logging.getLogger("minisd.judge")


def load_labelled(shards_dir: str | Path, split: str) -> tuple[np.ndarray, list[str], int]:
    """Images and class labels of a split; unlabelled samples are counted, not used."""
    images, labels, unlabelled = [], [], 0
    for sample in iter_samples(shards_dir, split):
        if sample.label is None:
            unlabelled += 1
            continue
        images.append(sample.image)
        labels.append(sample.label)
    if len({im.shape for im in images}) > 1:
        raise StageError(f"{split} shards in {shards_dir} mix image sizes; the shard contract has one image_size")
    stacked = np.stack(images) if images else np.zeros((0, 1, 1), np.uint8)
    return stacked, labels, unlabelled


def evaluate_accuracy(judge: Judge, images: np.ndarray, labels: list[str]) -> tuple[float, dict[str, float]]:
    predicted = judge.predict(images)
    hits = np.array([p == t for p, t in zip(predicted, labels)])
    per_class = {c: float(hits[[t == c for t in labels]].mean()) for c in sorted(set(labels))}
    return float(hits.mean()), per_class


def _write_skipped(out_dir: Path, live_dir: Path, reason: str) -> dict:
    """No labels, no judge: record why, so evaluate can report its class metrics as skipped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG).write_text(json.dumps({"classes": [], "skipped": reason}, indent=2) + "\n")
    with Live(str(live_dir), dvcyaml=None, save_dvc_exp=False) as live:
        live.summary["skipped"] = reason
    log.warning("judge skipped: %s", reason)
    return {"skipped": reason}


class JudgeTrainer:
    """Epochs of seeded orders over freshly augmented images, on `training.loop.fit` like every trainer.

    One numpy generator draws each epoch's order and then its batches' augmentations, in that
    order; the checkpoint (one per epoch) saves its state, so a resumed run draws what the
    uninterrupted one would have.
    """

    def __init__(self, params: JudgeParams, judge: Judge, images: np.ndarray, targets: torch.Tensor, unlabelled: int,
                 val_images: np.ndarray, val_labels: list[str], accelerator, out_dir: Path):
        self.params, self.judge, self.images, self.targets, self.unlabelled = params, judge, images, targets, unlabelled
        self.val_images, self.val_labels, self.accelerator, self.out_dir = val_images, val_labels, accelerator, out_dir
        self.steps_per_epoch = math.ceil(len(images) / params.batch_size)
        self.rng = np.random.default_rng(params.seed)
        self.order: np.ndarray | None = None
        optimizer = adamw(judge.net.parameters(), lr=params.lr, weight_decay=1e-4)
        self.lr_scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=params.lr, total_steps=self.steps_per_epoch * params.epochs, pct_start=0.15)
        self.net, self.optimizer = accelerator.prepare(judge.net, optimizer)
        self.net.train()  # from here on; validation switches to eval and back (`evaluating`)
        self.val_accuracy, self.per_class = 0.0, {}  # the latest validation's

    def schedule(self) -> Schedule:
        """Logged, validated and checkpointed once per epoch; no wall-clock budget (it trains in a minute)."""
        epoch = self.steps_per_epoch
        return Schedule(epoch * self.params.epochs, self.params.batch_size, epoch, epoch, epoch)

    def state(self) -> dict:
        return {"model": self.net, "optimizer": self.optimizer, "lr_scheduler": self.lr_scheduler,
                "rng": GeneratorState(self.rng)}

    def step(self, step: int) -> dict[str, float]:
        at = step % self.steps_per_epoch
        if at == 0:
            self.order = self.rng.permutation(len(self.images))
        idx = self.order[at * self.params.batch_size : (at + 1) * self.params.batch_size]
        batch = augment_batch(self.images[idx], self.rng) if self.params.augment else self.images[idx]
        x = prepare(batch, self.params.image_size).to(self.accelerator.device)
        y = self.targets[idx].to(self.accelerator.device)
        logits = self.net(x)
        loss = F.cross_entropy(logits, y, label_smoothing=0.1)
        check_finite(loss, step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        self.optimizer.step()
        self.lr_scheduler.step()
        return {"loss": loss.item(), "accuracy": float((logits.argmax(1) == y).float().mean())}

    def log_extras(self, step: int) -> dict[str, float]:
        return {"epoch": step / self.steps_per_epoch}

    def validate(self, step: int, live, final: bool) -> dict[str, float]:
        with evaluating(self.net):  # no dropout: it would also draw from the RNG training continues with
            self.val_accuracy, self.per_class = evaluate_accuracy(self.judge, self.val_images, self.val_labels)
        log.info("epoch %d: val accuracy %.3f", round(step / self.steps_per_epoch), self.val_accuracy)
        return {"val/accuracy": self.val_accuracy}

    def export(self, step: int) -> dict:
        """The judge with its val numbers, among them its accuracy on the val images restyled
        (thicker/thinner, blurred, greyer, noisy, shifted): what a generated sketch's style alone could cost it.
        `fit` validates just before, so the val numbers are the final weights'."""
        restyled = augment_batch(self.val_images, np.random.default_rng(self.params.seed + 1))
        self.net.eval()
        summary = {
            "val_accuracy": self.val_accuracy,
            "val_accuracy_restyled": evaluate_accuracy(self.judge, restyled, self.val_labels)[0],
            "val_worst_class_accuracy": min(self.per_class.values()),
            "chance_accuracy": 1.0 / len(self.judge.classes),
            "num_classes": len(self.judge.classes),
            "num_train": len(self.images),
            "num_val": len(self.val_images),
            "num_train_unlabelled": self.unlabelled,
        }
        self.judge.info = {**summary, "val_per_class_accuracy": self.per_class}
        self.judge.net.cpu()
        self.judge.save(self.out_dir)
        return summary


def train_judge(params: JudgeParams, shards_dir: str | Path, out_dir: str | Path, live_dir: str | Path,
                checkpoint_root: str | Path = paths.CHECKPOINTS) -> dict:
    out_dir, live_dir = Path(out_dir), Path(live_dir)
    train_images, train_labels, train_unlabelled = load_labelled(shards_dir, "train")
    val_images, val_labels, _ = load_labelled(shards_dir, "val")
    classes = sorted(set(train_labels))
    if len(classes) < 2:
        return _write_skipped(out_dir, live_dir, f"train shards have {len(classes)} labelled classes; need >= 2")
    if not val_labels:
        return _write_skipped(out_dir, live_dir, "val shards have no class labels to measure the judge on")
    unknown = sorted(set(val_labels) - set(classes))
    if unknown:
        log.warning("val classes never seen in train count as misses: %s", unknown)

    accelerator = make_accelerator("no")  # fp32: the judge is the yardstick, and trains in a minute anyway
    torch.manual_seed(params.seed)  # the weights' init and dropout
    judge = Judge(JudgeNet(params.channels, len(classes)).to(accelerator.device), classes, params.image_size)
    targets = torch.tensor([classes.index(c) for c in train_labels])
    trainer = JudgeTrainer(params, judge, train_images, targets, train_unlabelled, val_images, val_labels, accelerator,
                           out_dir)
    schedule = trainer.schedule()
    log.info("judge: %d classes, %d train / %d val images, %d steps on %s", len(classes), len(train_images),
             len(val_images), schedule.max_steps, accelerator.device)
    checkpoints = CheckpointManager.for_stage("train_judge", {"judge": params.model_dump(mode="json")},
                                              [Path(shards_dir)], 1, accelerator, checkpoint_root)
    return fit(trainer, schedule, accelerator, checkpoints, live_dir, "train_judge").metrics
