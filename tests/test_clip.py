"""train_clip: the same-caption loss, learning on a tiny set, stock loading, resume, the pretrained path."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from _drawings import make_shards
from _tiny_models import tiny_tokenizer
from minisd import paths
from minisd.attributes import ink_bbox, layout
from minisd.clip import trainer as clip_trainer
from minisd.clip.batches import LayoutBatches
from minisd.clip.data import (MIN_CROP, CaptionedImages, clip_inputs, clip_pixels, ink_boxes, stroke_bbox,
                              tower_images, uses_ink_coordinates, uses_ink_crop)
from minisd.clip.loss import contrastive_loss, same_text_targets
from minisd.config import parse_params
from minisd.params.base import ParamsError

TINY = {
    "ingest": {"sources": [{"kind": "synthetic", "count": 10}]},
    "tokenizer": {"vocab_size": 600, "max_length": 16},
    "text_encoder": {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64},
    "clip": {"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_layers": 2, "num_heads": 2,
             "intermediate_size": 64, "projection_dim": 32, "batch_size": 32, "lr": 2e-3, "warmup_steps": 10,
             "max_steps": 500, "val_every": 1000, "log_every": 10, "checkpoint_every": 5},
}


def tiny_params(**clip):
    raw = json.loads(json.dumps(TINY))
    raw["clip"].update(clip)
    return parse_params(raw)


def test_same_text_targets_spread_over_duplicates():
    targets = same_text_targets(torch.tensor([3, 5, 3, 7]))
    assert torch.allclose(targets.sum(dim=1), torch.ones(4))
    assert targets[0, 2] == targets[0, 0] == 0.5 and targets[0, 1] == 0


def _plain_clip_loss(images, texts, scale):
    logits = scale.exp() * images @ texts.T
    labels = torch.arange(len(images))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def test_same_caption_pairs_equal_plain_infonce_gradients():
    """The measurement behind the loss's docstring: with duplicate caption texts (identical text
    embeddings) the same-text target and plain CLIP give the same loss and the same gradients."""
    torch.manual_seed(0)
    ids = torch.tensor([0, 1, 0, 2, 1, 3, 0])
    texts = F.normalize(torch.randn(4, 8), dim=-1)[ids]
    images = F.normalize(torch.randn(7, 8), dim=-1)
    scale = torch.tensor(2.0)
    grads = []
    for loss_fn in (lambda i, t: contrastive_loss(i, t, scale, ids), lambda i, t: _plain_clip_loss(i, t, scale)):
        i, t = images.clone().requires_grad_(), texts.clone().requires_grad_()
        loss = loss_fn(i, t)
        loss.backward()
        grads.append((loss.detach(), i.grad, t.grad))
    (la, gia, gta), (lb, gib, gtb) = grads
    assert torch.allclose(la, lb, atol=1e-6)
    assert torch.allclose(gia, gib, atol=1e-6)
    # per distinct text the summed gradient is what reaches the shared text tower
    for k in ids.unique():
        assert torch.allclose(gta[ids == k].sum(0), gtb[ids == k].sum(0), atol=1e-6)


def test_perfect_embeddings_reach_the_loss_floor():
    """Two images with one caption, embedded perfectly: nothing left to learn (gradient ~0)."""
    e0, e1 = torch.eye(4)[0], torch.eye(4)[1]
    images = torch.stack([e0, e0, e1]).requires_grad_()
    loss = contrastive_loss(images, torch.stack([e0, e0, e1]), torch.tensor(math.log(100.0)), torch.tensor([0, 0, 1]))
    loss.backward()
    assert images.grad.abs().max() < 1e-3


@pytest.fixture
def shards(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return make_shards(tmp_path, n_train=256, n_val=64, size=32)


def train_clip(params, shards):
    """The stage's call: the three sections it reads."""
    return clip_trainer.train_clip(params.clip, params.tokenizer, params.text_encoder, shards)


def test_tiny_clip_retrieves_far_above_chance_and_loads_stock(shards):
    metrics = train_clip(tiny_params(), shards)
    top1, chance = metrics["val/image_to_text_top1"], metrics["val/image_to_text_chance"]
    assert top1 > 4 * chance, metrics
    assert metrics["val/zero_shot_accuracy"] > 1.5 * metrics["val/zero_shot_chance"], metrics
    saved = json.loads((paths.CLIP_LIVE / "metrics.json").read_text())
    assert saved["step"] == 500
    code = textwrap.dedent("""
        from transformers import CLIPModel, CLIPTextModel, CLIPTokenizer
        clip = CLIPModel.from_pretrained("models/clip")
        text = CLIPTextModel.from_pretrained("models/text_encoder")
        for folder in ("models/tokenizer", "models/clip"):
            assert CLIPTokenizer.from_pretrained(folder).model_max_length == 16
        assert clip.config.vision_config.image_size == 32 and text.config.hidden_size == 32
        assert clip.config.vision_config.ink_coordinates  # the saved input convention survives a reload
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("ok")
    whole = load_file("models/clip/model.safetensors")
    tower = load_file("models/text_encoder/model.safetensors")
    for name, tensor in tower.items():  # the pipeline's encoder is exactly the CLIP's text tower
        assert torch.equal(whole[f"text_model.{name}"], tensor), name


def test_ink_coordinates_say_where_the_ink_is():
    sheet = np.full((2, 16, 16), 255, np.uint8)
    sheet[0, 0:2, 0:2] = 0  # ink top left
    sheet[1, 14:16, 12:16] = 0  # ink bottom right
    gray = clip_pixels(sheet, 16)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 0], gray[:, 2])
    coords = clip_pixels(sheet, 16, ink_coordinates=True)
    assert torch.equal(coords[:, 0], gray[:, 0])
    ink = coords[:, 0] < 0
    assert torch.all(coords[:, 1:][~ink.unsqueeze(1).expand(-1, 2, -1, -1)] == 0)  # paper carries no position
    x, y = coords[:, 1][ink], coords[:, 2][ink]
    assert x[:4].max() < -0.8 and y[:4].max() < -0.8  # sample 0: left, top
    assert x[4:].min() > 0.5 and y[4:].min() > 0.8  # sample 1: right, bottom


def test_ink_boxes_are_squares_around_the_ink():
    sheet = np.full((3, 100, 100), 255, np.uint8)
    sheet[0, 10:30, 60:100] = 0  # 40 wide, 20 tall, touching the right edge
    sheet[1, 50, 50] = 0  # one dot
    boxes = ink_boxes(sheet)
    np.testing.assert_allclose(boxes[0], [0.8 - 0.22, 0.2 - 0.22, 0.44], atol=1e-9)  # centre (0.8, 0.2), side 1.1 x 0.4
    np.testing.assert_allclose(boxes[1, 2], MIN_CROP * 1.1)  # a dot is not blown up to fill the frame
    np.testing.assert_allclose(boxes[2], [0, 0, 1])  # blank: the whole frame


def test_stroke_box_keeps_anti_aliased_edges_and_leaves_out_faint_haze():
    sketch = np.full((128, 128), 255, np.uint8)
    cv2.circle(sketch, (90, 90), 15, 0, 2, cv2.LINE_AA)  # a small circle, bottom right, grey edges
    clean = stroke_bbox(sketch)
    assert clean == ink_bbox(sketch, 200)  # a clean drawing: every grey pixel is a stroke's edge
    hazy = sketch.copy()
    cv2.rectangle(hazy, (5, 5), (122, 122), 196, 1)  # a decoder's faint frame: grey, no dark pixel
    hazy[20:30, 20:30] = 190  # and a light smudge
    assert ink_bbox(hazy, 200) == (5, 5, 123, 123)  # grey alone would box the whole frame
    assert stroke_bbox(hazy) == clean
    touching = sketch.copy()
    cv2.line(touching, (90, 60), (90, 76), 180, 1)  # a grey tail joined to the stroke is part of it
    assert stroke_bbox(touching)[1] == 60
    pencil = np.full((64, 64), 255, np.uint8)
    pencil[10:20, 30:50] = 170  # light pencil only: no dark core anywhere, the grey is the drawing
    assert stroke_bbox(pencil) == (30, 10, 50, 20)
    assert stroke_bbox(np.full((8, 8), 255, np.uint8)) is None


def test_ink_crop_fills_the_frame_and_keeps_where_the_ink_was():
    sheet = np.full((2, 128, 128), 255, np.uint8)
    cv2.circle(sheet[0], (20, 20), 10, 0, 2)  # a small circle, top left
    cv2.circle(sheet[1], (64, 64), 50, 0, 2)  # a large circle, centre
    crops, boxes = tower_images(sheet, 32, ink_crop=True)
    for crop in crops:  # both circles now span the tower's frame (5% margin each side)
        rows, cols = np.nonzero(crop < 128)
        assert rows.min() <= 3 and rows.max() >= 28 and cols.min() <= 3 and cols.max() >= 28
    pixels = clip_pixels(crops, 32, ink_coordinates=True, boxes=boxes)
    ink = (1 - pixels[:, 0]) / 2
    x = pixels[:, 1] / ink.clamp_min(1e-6)  # channel 1 is ink x frame x
    small_x, large_x = x[0][ink[0] > 0.5], x[1][ink[1] > 0.5]
    assert small_x.min() > -0.9 and small_x.max() < -0.45  # x of the ink in the 128 px frame: 10..30 px
    assert large_x.min() < -0.7 and large_x.max() > 0.7
    scored = clip_inputs(sheet, 32, ink_coordinates=True, ink_crop=True)  # what the scorers feed
    assert torch.equal(scored, pixels)


def test_captioned_images_feed_the_crops_they_were_built_with(shards):
    from minisd.shards import iter_samples

    samples = list(iter_samples(shards, "train"))[:6]
    pairs = CaptionedImages.from_samples(samples, tiny_tokenizer(), 32, ink_coordinates=True, ink_crop=True)
    expected = clip_inputs(np.stack([s.image for s in samples]), 32, ink_coordinates=True, ink_crop=True)
    assert torch.equal(pairs.pixels(), expected)
    assert torch.equal(pairs.pixels(torch.tensor([4, 1])), expected[[4, 1]])
    assert pairs.layouts is None  # measured only for clip.layout_groups
    with pytest.raises(ParamsError, match="ink_crop"):
        tiny_params(ink_crop=True, ink_coordinates=False)


def test_stock_clip_config_means_gray_input():
    from transformers import CLIPConfig, CLIPModel

    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    stock = CLIPModel(CLIPConfig(text_config=small, vision_config={**small, "image_size": 32, "patch_size": 16}))
    assert not uses_ink_coordinates(stock) and not uses_ink_crop(stock)


def test_killed_run_resumes_to_identical_weights(shards, monkeypatch):
    params = tiny_params(max_steps=12, checkpoint_every=5)
    train_clip(params, shards)
    clean = load_file("models/clip/model.safetensors")

    original = clip_trainer.ClipTrainer.step

    def crash(self, step):
        if step == 8:
            raise KeyboardInterrupt("killed")
        return original(self, step)

    monkeypatch.setattr(clip_trainer.ClipTrainer, "step", crash)
    with pytest.raises(KeyboardInterrupt):
        train_clip(params, shards)
    assert any(paths.CHECKPOINTS.glob("train_clip-*/step-00000005"))
    monkeypatch.setattr(clip_trainer.ClipTrainer, "step", original)
    train_clip(params, shards)  # resumes at step 5
    resumed = load_file("models/clip/model.safetensors")
    assert clean.keys() == resumed.keys()
    assert all(torch.equal(clean[k], resumed[k]) for k in clean)
    assert not any(paths.CHECKPOINTS.glob("train_clip-*/step-*"))  # a finished run clears its checkpoints


def test_pretrained_text_encoder_is_saved_not_trained(shards, tmp_path):
    from transformers import CLIPTextConfig, CLIPTextModel

    pretrained = tmp_path / "pretrained"
    tokenizer = tiny_tokenizer(max_length=16)
    tokenizer.save_pretrained(pretrained / "tokenizer")
    CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=16)
                  ).save_pretrained(pretrained / "text_encoder")
    raw = json.loads(json.dumps(TINY))
    raw["tokenizer"] = {"source": "pretrained", "path": str(pretrained), "subfolder": "tokenizer", "max_length": 16}
    raw["text_encoder"] = {"source": "pretrained", "path": str(pretrained), "subfolder": "text_encoder"}
    assert train_clip(parse_params(raw), shards) == {}
    before = load_file(pretrained / "text_encoder" / "model.safetensors")
    after = load_file(paths.TEXT_ENCODER / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert (paths.TOKENIZER / "tokenizer_config.json").is_file()
    assert json.loads((paths.CLIP_LIVE / "metrics.json").read_text())["steps"] == 0  # nothing was trained


def _blob(x: int, y: int, radius: int) -> np.ndarray:
    image = np.full((64, 64), 255, np.uint8)
    cv2.circle(image, (x, y), radius, 0, 2)
    return image


def test_layout_batches_group_sketches_that_share_size_and_position():
    corners = [(12, 12), (52, 12), (12, 52), (52, 52)]
    images = [_blob(x, y, r) for x, y in corners for r in (4, 5, 6, 7, 8)]  # 4 layouts x 5 sketches
    keys = [layout(image) for image in images]
    assert len(set(keys)) == 4 and keys[0] == "small top left"
    order = LayoutBatches(keys, batch_size=8, groups=2, seed=0)
    for step in range(20):
        batch = order.indices(step).tolist()
        for group in (batch[:4], batch[4:]):
            assert len({keys[i] for i in group}) == 1 and len(set(group)) == 4  # one layout, no repeats
    assert order.indices(3).tolist() == LayoutBatches(keys, 8, 2, seed=0).indices(3).tolist()  # resumable
    assert order.indices(3).tolist() != LayoutBatches(keys, 8, 2, seed=1).indices(3).tolist()
    with pytest.raises(ParamsError, match="layout_groups"):
        parse_params({"clip": {"batch_size": 8, "layout_groups": 3}})
