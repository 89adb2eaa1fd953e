"""Train the judge on the train shards' class labels; report its val accuracy so its verdicts can be trusted."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import PartialState
from dvclive import Live
from tqdm import tqdm

from minisd.config import JudgeParams
from minisd.judge.augment import augment_batch
from minisd.judge.model import CONFIG, Judge, JudgeNet, prepare
from minisd.shards import iter_samples
from minisd.stage import StageError

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


def train_epoch(net, optimizer, schedule, images, targets, params: JudgeParams, rng, bar) -> tuple[float, float]:
    """One pass in a seeded order over freshly augmented images; returns (mean loss, accuracy)."""
    device = next(net.parameters()).device
    net.train()
    order = rng.permutation(len(images))
    seen, correct, loss_sum = 0, 0, 0.0
    for start in range(0, len(order), params.batch_size):
        idx = order[start : start + params.batch_size]
        batch = augment_batch(images[idx], rng) if params.augment else images[idx]
        x = prepare(batch, params.image_size).to(device)
        y = targets[idx].to(device)
        logits = net(x)
        loss = F.cross_entropy(logits, y, label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        seen += len(idx)
        correct += int((logits.argmax(1) == y).sum())
        loss_sum += loss.item() * len(idx)
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return loss_sum / seen, correct / seen


def train_judge(params: JudgeParams, shards_dir: str | Path, out_dir: str | Path, live_dir: str | Path) -> dict:
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

    device = PartialState().device
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    net = JudgeNet(params.channels, len(classes)).to(device)
    judge = Judge(net, classes, params.image_size)
    targets = torch.tensor([classes.index(c) for c in train_labels])

    steps_per_epoch = math.ceil(len(train_images) / params.batch_size)
    total = steps_per_epoch * params.epochs
    optimizer = torch.optim.AdamW(net.parameters(), lr=params.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=params.lr, total_steps=total, pct_start=0.15)
    log.info("judge: %d classes, %d train / %d val images, %d steps on %s",
             len(classes), len(train_images), len(val_images), total, device)

    with Live(str(live_dir), dvcyaml=None, save_dvc_exp=False) as live:
        bar = tqdm(total=total, desc="judge", unit="step", mininterval=2)
        for epoch in range(params.epochs):
            train_loss, train_accuracy = train_epoch(net, optimizer, schedule, train_images, targets, params, rng, bar)
            net.eval()
            val_accuracy, per_class = evaluate_accuracy(judge, val_images, val_labels)
            live.log_metric("train_loss", train_loss)
            live.log_metric("train_accuracy", train_accuracy)
            live.log_metric("val_accuracy", val_accuracy)
            live.next_step()
            log.info("epoch %d: train acc %.3f, val acc %.3f", epoch + 1, train_accuracy, val_accuracy)
        bar.close()
        # the same val images restyled (thicker/thinner, blurred, greyer, noisy, shifted): how much a
        # generated sketch's style alone could cost the judge
        restyled = augment_batch(val_images, np.random.default_rng(params.seed + 1))
        summary = {
            "val_accuracy": val_accuracy,
            "val_accuracy_restyled": evaluate_accuracy(judge, restyled, val_labels)[0],
            "val_worst_class_accuracy": min(per_class.values()),
            "chance_accuracy": 1.0 / len(classes),
            "num_classes": len(classes),
            "num_train": len(train_images),
            "num_val": len(val_images),
            "num_train_unlabelled": train_unlabelled,
        }
        live.summary.update(summary)

    judge.info = {**summary, "val_per_class_accuracy": per_class}
    judge.net.cpu()
    judge.save(out_dir)
    return summary
