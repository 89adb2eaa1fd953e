import json

import numpy as np
import pytest
from _drawings import SHAPES, doodle_samples, make_shards

from minisd.params.judge import JudgeParams
from minisd.judge.model import Judge, load_judge
from minisd.judge.augment import augment_batch
from minisd.judge.train import JudgeTrainer, load_labelled, train_judge
from minisd.shards import write_split

TINY = JudgeParams(channels=[8, 16, 32], image_size=32, batch_size=16, lr=1e-2, epochs=12, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("judge")
    shards = make_shards(root, n_train=160, n_val=40, size=32)
    summary = train_judge(TINY, shards, root / "judge", root / "live", root / "checkpoints")
    return root, shards, summary


def test_judge_beats_chance_and_reports_val_accuracy(trained):
    root, shards, summary = trained
    assert summary["num_classes"] == len(SHAPES)
    assert summary["chance_accuracy"] == pytest.approx(1 / len(SHAPES))
    assert summary["val_accuracy"] >= 0.5  # chance is 0.25
    # the restyled accuracy is the saved judge's on the val images restyled with the documented seed
    val_images, val_labels, _ = load_labelled(shards, "val")
    restyled = augment_batch(val_images, np.random.default_rng(TINY.seed + 1))
    hits = [p == t for p, t in zip(Judge.load(root / "judge").predict(restyled), val_labels)]
    assert summary["val_accuracy_restyled"] == pytest.approx(np.mean(hits))
    metrics = json.loads((root / "live" / "metrics.json").read_text())
    assert metrics["val_accuracy"] == metrics["val"]["accuracy"] == summary["val_accuracy"]
    curve = (root / "live" / "plots" / "metrics" / "val" / "accuracy.tsv").read_text().split()
    assert curve[2::2] == [str(10 * epoch) for epoch in range(1, 13)]  # one point an epoch (160 / 16 steps)
    assert not (root / "checkpoints").exists() or not any((root / "checkpoints").iterdir())  # cleared at the end


def test_saved_judge_reloads_with_classes_and_same_answers(trained):
    root, _, summary = trained
    judge = Judge.load(root / "judge")
    assert judge.classes == sorted(SHAPES)
    assert judge.info["val_accuracy"] == pytest.approx(summary["val_accuracy"])
    samples = doodle_samples(24, seed=7, size=32)
    images = np.stack([s.image for s in samples])
    predicted = judge.predict(images)
    assert predicted == Judge.load(root / "judge").predict(images)
    assert np.mean([p == s.label for p, s in zip(predicted, samples)]) > 1 / len(SHAPES)
    features = judge.features(images)
    assert features.shape == (24, TINY.channels[-1]) and np.isfinite(features).all()
    # other image sizes are resized into the judge's input: a 64 px image gives the same kind of answer
    assert len(judge.predict(np.stack([s.image for s in doodle_samples(4, 3, size=64)]))) == 4


def test_killed_run_resumes_to_the_uninterrupted_judge(trained, tmp_path, monkeypatch):
    """What the judge adds to `fit`'s contract: its numpy generator (orders, augmentations) is checkpointed."""
    _, shards, _ = trained
    short = TINY.model_copy(update={"epochs": 2})  # 10 steps an epoch, a checkpoint after each

    def run(name):
        return train_judge(short, shards, tmp_path / name / "judge", tmp_path / name / "live", tmp_path / name / "ck")

    run("whole")
    step = JudgeTrainer.step

    def killed_in_epoch_two(self, at):
        if at == 15:
            raise KeyboardInterrupt
        return step(self, at)

    monkeypatch.setattr(JudgeTrainer, "step", killed_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run("resumed")
    monkeypatch.setattr(JudgeTrainer, "step", step)
    run("resumed")  # from the checkpoint at step 10
    for name in ("judge/model.safetensors", "judge/config.json", "live/metrics.json"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "resumed" / name).read_bytes(), name


def test_augment_is_seeded_and_keeps_shape():
    images = np.stack([s.image for s in doodle_samples(8, 0, size=32)])
    a = augment_batch(images, np.random.default_rng(1))
    b = augment_batch(images, np.random.default_rng(1))
    assert a.dtype == np.uint8 and a.shape == images.shape
    assert np.array_equal(a, b) and not np.array_equal(a, images)


def test_unlabelled_shards_skip_the_judge_with_a_reason(tmp_path):
    samples = doodle_samples(12, 0, size=32)
    for s in samples:
        s.label = None
    write_split(samples, tmp_path / "shards", "train", 1)
    write_split(samples[:4], tmp_path / "shards", "val", 1)
    summary = train_judge(TINY, tmp_path / "shards", tmp_path / "judge", tmp_path / "live", tmp_path / "ck")
    assert "skipped" in summary
    judge, reason = load_judge(tmp_path / "judge")
    assert judge is None and "labelled classes" in reason
