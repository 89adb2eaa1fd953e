"""REPA (unet/repa.py): the teacher embeddings follow the latents' keys, the alignment loss is learned and
resumed step-exactly, and the exported UNet stays the stock model with nothing of the projector in it."""

import pytest
import torch
from safetensors.torch import load_file

from _drawings import make_shards
from _tiny_models import tiny_clip, tiny_tokenizer
from _unet import class_teacher, synthetic_split, tiny_params
from minisd.clip.data import model_inputs
from minisd.clip.metrics import image_embeddings
from minisd.shards import load_images
from minisd.stage import StageError
from minisd.training.checkpoints import CheckpointManager
from minisd.training.precision import make_accelerator
from minisd.unet.model import build_unet
from minisd.unet.repa import teacher_embeddings
from minisd.unet.trainer import Outputs, fit_unet


@pytest.fixture
def accelerator():
    return make_accelerator("no")


def _outputs(root):
    return Outputs(root / "unet", root / "scheduler", root / "live")


def _curve(live, name):
    rows = (live / "plots" / "metrics" / "train" / f"{name}.tsv").read_text().splitlines()[1:]
    return [float(row.split("\t")[-1]) for row in rows]


@pytest.mark.parametrize("blocks", [["mid_block"], ["mid_block", "down_blocks.0", "up_blocks.1"]])
def test_alignment_is_learned_and_the_export_is_the_stock_unet(tmp_path, accelerator, blocks):
    params = tiny_params(max_steps=60, repa_weight=1.0, lr=5e-3, log_every=10, val_every=60, repa_blocks=blocks)
    train = synthetic_split()
    fit_unet(params, train, None, _outputs(tmp_path), accelerator=accelerator, teacher=class_teacher(len(train)))
    repa = [loss / len(blocks) for loss in _curve(tmp_path / "live", "repa_loss")]  # a sum over the blocks
    assert repa[0] > 0.3 and repa[-1] < 0.15, repa  # 1 - cosine, per 10 steps: 0.48 -> 0.08 measured (mid_block)
    saved = load_file(str(tmp_path / "unet" / "diffusion_pytorch_model.safetensors"))
    assert set(saved) == set(build_unet(params, 16, 4).state_dict())  # no projector weights in the export


def test_resume_restores_the_projector(tmp_path, accelerator):
    """Killed after step 4's checkpoint and resumed: bitwise the uninterrupted run, projector included."""
    params = tiny_params(max_steps=8, checkpoint_every=2, val_every=4, repa_weight=0.5)
    train = synthetic_split()
    teacher = class_teacher(len(train))
    fit_unet(params, train, None, _outputs(tmp_path / "a"), accelerator=accelerator, teacher=teacher)
    ckpt = CheckpointManager("t", {"x": 1}, keep=2, root=tmp_path / "ckpt", accelerator=accelerator)

    class Killed(Exception):
        pass

    def killer(step, idx, rows):
        if step == 5:
            raise Killed

    with pytest.raises(Killed):
        fit_unet(params, train, None, _outputs(tmp_path / "b"), accelerator=accelerator, checkpoints=ckpt,
                 on_batch=killer, teacher=teacher)
    fit_unet(params, train, None, _outputs(tmp_path / "b"), accelerator=accelerator, checkpoints=ckpt,
             teacher=teacher)
    a, b = (load_file(str(tmp_path / run / "unet" / "diffusion_pytorch_model.safetensors")) for run in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _curve(tmp_path / "a" / "live", "repa_loss") == _curve(tmp_path / "b" / "live", "repa_loss")


def test_repa_without_a_teacher_names_the_key(tmp_path, accelerator):
    train = synthetic_split()
    with pytest.raises(StageError, match="unet.repa_weight"):
        fit_unet(tiny_params(repa_weight=0.5), train, None, _outputs(tmp_path), accelerator=accelerator)
    with pytest.raises(StageError, match="unet.repa_weight"):
        fit_unet(tiny_params(repa_weight=0.5), train, None, _outputs(tmp_path), accelerator=accelerator,
                 teacher=class_teacher(len(train) - 1))


def test_teacher_embeddings_follow_the_latent_keys(tmp_path):
    shards = make_shards(tmp_path, n_train=12, n_val=4, size=32)
    tokenizer = tiny_tokenizer()
    clip = tiny_clip(tokenizer)
    clip.save_pretrained(tmp_path / "clip")
    keys, images = load_images(shards, "train")
    order = [5, 0, 11, 3]
    got = teacher_embeddings(tmp_path / "clip", shards, [keys[i] for i in order])
    want = image_embeddings(clip.eval(), model_inputs(clip, tmp_path / "clip", images[order]))
    assert torch.allclose(got, want, atol=1e-6)
    assert not torch.allclose(got[0], got[1])  # different sketches, different targets
    with pytest.raises(StageError, match="no sketch in"):
        teacher_embeddings(tmp_path / "clip", shards, [keys[0], "not-a-key"])
    with pytest.raises(StageError, match="train_clip"):
        teacher_embeddings(tmp_path / "nothing", shards, keys)
    clip.text_model.save_pretrained(tmp_path / "text_only")  # what a pretrained text encoder alone leaves
    with pytest.raises(StageError, match="repa_weight: 0"):
        teacher_embeddings(tmp_path / "text_only", shards, keys)


@pytest.mark.parametrize("blocks, match", [(["down_blocks.2"], "down_blocks.0..1"), (["encoder"], "not a UNet block"),
                                           (["mid_block", "mid_block"], "twice")])  # fmt: skip
def test_repa_blocks_are_checked_by_name(blocks, match):
    with pytest.raises(ValueError, match=match):
        tiny_params(repa_blocks=blocks)
