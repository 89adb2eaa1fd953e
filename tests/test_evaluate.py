import json
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch
from _drawings import make_shards
from _tiny_models import make_models, make_prompts, tiny_tokenizer

from minisd.params.evaluate import EvaluateParams
from minisd.params.judge import JudgeParams
from minisd.evaluate import Locations, score_pipeline
from minisd.evaluate import ceiling
from minisd.evaluate.adherence import score_samples
from minisd.evaluate.carryover import carry_over
from minisd.evaluate.distances import frechet_distance, kernel_distance, split_real
from minisd.evaluate.external_metrics import inception_fid
from minisd.evaluate.figures import loss_curves, read_curves, write_loss_curves
from minisd.judge.train import train_judge
from minisd.shards import Sample
from minisd.stage import StageError

PARAMS = EvaluateParams(samples_per_prompt=2, steps=2, guidance=3.0, batch_size=5, seed=0, grid_seeds=3)
HEADLINE = [
    "judge_accuracy", "size_accuracy", "position_accuracy", "attributes_accuracy", "joint_accuracy",
    "sketch_fid", "sketch_fid_real", "sketch_kid", "sketch_kid_real", "stroke_width", "stroke_width_real",
    "paper_grey", "paper_grey_real",
    "judge_val_accuracy",
    "unet_val_loss", "vae_psnr", "vae_ssim", "sketch_clip_score", "sketch_clip_score_real", "prompt_retrieval",
    "prompt_retrieval_chance",
]  # fmt: skip


def _fake_training_logs(root):
    """What DVCLive leaves in results/unet and results/vae (nested keys, TSV curves)."""
    unet, vae = root / "results" / "unet", root / "results" / "vae"
    (unet / "plots" / "metrics" / "train").mkdir(parents=True)
    (unet / "metrics.json").write_text(json.dumps({"step": 20, "train": {"loss": 0.2}, "val": {"loss": 0.15}, "final_val_loss": 0.12}))
    (unet / "plots" / "metrics" / "train" / "loss.tsv").write_text("step\tloss\n0\t1.0\n10\t0.5\n20\t0.2\n")
    (vae / "plots" / "metrics" / "val").mkdir(parents=True)
    (vae / "metrics.json").write_text(json.dumps({"step": 5, "val": {"psnr": 25.5, "ssim": 0.91}}))  # no ink_f1
    (vae / "plots" / "metrics" / "val" / "psnr.tsv").write_text("step\tpsnr\n5\t25.5\n")
    return unet, vae


def _where(root, out="eval", pipeline="pipeline"):
    return Locations(
        models=root / "models", shards=root / "shards", prompts=root / "prompts.json",
        unet_live=root / "results" / "unet", vae_live=root / "results" / "vae",
        pipeline=root / "models" / pipeline, out=root / "results" / out,
    )


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    make_shards(root, n_train=120, n_val=40, size=32)
    make_models(root, image_channels=1, image_size=32)
    make_prompts(root / "prompts.json")
    _fake_training_logs(root)
    judge = JudgeParams(channels=[8, 16], image_size=32, batch_size=32, epochs=2)
    train_judge(judge, root / "shards", root / "models" / "judge", root / "results" / "judge", root / "checkpoints")
    metrics = score_pipeline(PARAMS, _where(root))
    return root, metrics


def test_metrics_json_has_the_documented_keys(evaluated):
    root, metrics = evaluated
    on_disk = json.loads((root / "results" / "eval" / "metrics.json").read_text())
    assert on_disk == metrics
    for key in HEADLINE:
        assert isinstance(metrics[key], float), key
    for key in ("judge_accuracy", "size_accuracy", "position_accuracy", "attributes_accuracy", "joint_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["unet_val_loss"] == pytest.approx(0.12)  # final_val_loss preferred over val/loss
    assert metrics["vae_psnr"] == pytest.approx(25.5)
    counts = metrics["counts"]
    assert counts["prompts"] == 4 and counts["samples"] == 4 * PARAMS.samples_per_prompt
    assert counts["classes"] == 3 and counts["real_val"] == 40
    assert counts["judge_samples"] == 3 * PARAMS.samples_per_prompt  # the unlabelled prompt is not scored
    assert counts["size_samples"] == 2 * PARAMS.samples_per_prompt  # only prompts that name a size
    assert counts["joint_samples"] == 2 * PARAMS.samples_per_prompt
    assert metrics["prompt_retrieval_chance"] == pytest.approx(1 / 4)
    assert 0 <= metrics["sketch_clip_score"] <= 100 and 0 <= metrics["prompt_retrieval"] <= 1
    for key in ("judge_accuracy", "size_accuracy", "joint_accuracy"):
        low, high = metrics["ci95"][key]["low"], metrics["ci95"][key]["high"]
        assert 0 <= low <= metrics[key] <= high <= 1, key
    described = counts["real_retrieval_sketches"]  # val doodles with a labelled prompt's class, size, position
    assert ("prompt_retrieval_real" in metrics["skipped"]) == (described == 0)
    assert described == 0 or 0 <= metrics["prompt_retrieval_real"] <= 1
    assert counts["judge_small_samples"] == counts["judge_large_samples"] == PARAMS.samples_per_prompt
    for key in ("judge_real_accuracy", "judge_vae_roundtrip_accuracy", "judge_small_accuracy"):
        assert key in metrics["ci95"] and isinstance(metrics[key], float), key


def test_sheets_show_every_class_at_every_size_and_one_class_at_every_place(evaluated):
    root, _ = evaluated
    out = root / "results" / "eval"
    sizes = cv2.imread(str(out / "classes_by_size.png"), cv2.IMREAD_GRAYSCALE)
    places = cv2.imread(str(out / "positions.png"), cv2.IMREAD_GRAYSCALE)
    cell = 32 + 2  # the test images' side and the grid's gutter
    # three classes (circle, cross, square) x three sizes, and a 3 x 3 of places; 20 px of titles
    # above, 160 px of row labels to the left
    assert sizes.shape == (20 + 3 * cell, 160 + 3 * cell) and places.shape == sizes.shape


class _InkJudge:
    """Calls a sketch "dark" when most of it is ink: known answers for known images."""

    classes = ["dark", "light"]

    def predict(self, images):
        return ["dark" if image.mean() < 128 else "light" for image in images]


def test_judge_ceiling_counts_hits_per_size(monkeypatch):
    dark, light = np.zeros((8, 8), np.uint8), np.full((8, 8), 255, np.uint8)
    val = [Sample("a", dark, [], "dark", {"size": "small"}), Sample("b", light, [], "light", {"size": "small"}),
           Sample("c", dark, [], "dark", {"size": "large"}), Sample("d", light, [], "light", {"size": "large"}),
           Sample("e", light, [], "light", {}), Sample("f", dark, [], "cat", {"size": "small"})]  # unknown class: out
    monkeypatch.setattr(ceiling, "reconstruct", lambda vae, images: np.full_like(images, 255))
    metrics, intervals = ceiling.judge_ceiling(_InkJudge(), vae=None, val=val)
    assert metrics == {
        "judge_real_accuracy": 1.0, "judge_real_large_accuracy": 1.0, "judge_real_small_accuracy": 1.0,
        # a VAE that erases the ink: only the light sketches survive the round trip
        "judge_vae_roundtrip_accuracy": 0.6, "judge_vae_roundtrip_large_accuracy": 0.5,
        "judge_vae_roundtrip_small_accuracy": 0.5,
    }
    assert intervals["judge_vae_roundtrip_accuracy"]["low"] < 0.6 < intervals["judge_vae_roundtrip_accuracy"]["high"]


def test_judge_accuracy_within_each_asked_size():
    prompts = [{"text": "a small dark", "class": "dark", "attributes": {"size": "small", "position": None}},
               {"text": "a large dark", "class": "dark", "attributes": {"size": "large", "position": None}}]
    images = np.zeros((2, 2, 8, 8), np.uint8)
    metrics, _, counts = score_samples(prompts, images, [["dark", "light"], ["dark", "dark"]])
    assert metrics["judge_accuracy"] == 0.75
    assert metrics["judge_small_accuracy"] == 0.5 and metrics["judge_large_accuracy"] == 1.0
    assert counts["judge_small_samples"] == counts["judge_large_samples"] == 2


def test_wilson_interval_is_the_textbook_one():
    from minisd.evaluate.adherence import wilson_interval

    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(0, 0) == (0.0, 1.0)


def test_missing_optional_weights_and_carried_keys_are_reported_as_skipped(evaluated):
    _, metrics = evaluated
    skipped = metrics["skipped"]
    assert "inception_path" in skipped["inception_fid"] and "clip_path" in skipped["clip_score"]
    assert "inception_fid" not in metrics and "clip_score" not in metrics
    assert "vae_ink_f1" in skipped and "vae_ink_f1" not in metrics


def test_grid_and_loss_curves_are_images(evaluated):
    root, _ = evaluated
    out = root / "results" / "eval"
    grid = cv2.imread(str(out / "grid.png"), cv2.IMREAD_UNCHANGED)
    assert grid is not None and grid.ndim == 2
    assert grid.shape[0] == 20 + 4 * 32 + 4 * 2  # a title row, one row per prompt, 2 px gutters
    assert grid.shape[1] > PARAMS.grid_seeds * 32  # label column + one column per seed
    curves = cv2.imread(str(out / "loss_curves.png"), cv2.IMREAD_UNCHANGED)
    assert curves is not None and curves.shape[0] > 100
    records = json.loads((out / "samples.json").read_text())
    assert [r["text"] for r in records][0] == "a small circle in the top left"
    assert len(records[0]["samples"]) == PARAMS.samples_per_prompt


def test_exported_folder_runs_in_a_fresh_process_with_stock_diffusers_only(evaluated):
    root, _ = evaluated
    script = textwrap.dedent(
        """
        import sys
        import torch
        from diffusers import DiffusionPipeline, StableDiffusionPipeline
        path = sys.argv[1]
        for cls in (StableDiffusionPipeline, DiffusionPipeline):
            pipe = cls.from_pretrained(path)
            assert type(pipe).__name__ == "StableDiffusionPipeline", type(pipe)
            assert type(pipe.scheduler).__name__ == "DPMSolverMultistepScheduler"
            out = pipe("a small circle", num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np")
            assert out.images.shape[:3] == (1, 32, 32), out.images.shape
        assert not any(name.split(".")[0] == "minisd" for name in sys.modules)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(root / "models" / "pipeline")],
                          capture_output=True, text=True, cwd=root, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def test_evaluate_is_deterministic(evaluated):
    root, metrics = evaluated
    again = score_pipeline(PARAMS, _where(root, out="eval2", pipeline="pipeline2"))
    assert again == metrics
    first, second = root / "results" / "eval", root / "results" / "eval2"
    for name in ("metrics.json", "grid.png", "loss_curves.png", "samples.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    a, b = root / "models" / "pipeline", root / "models" / "pipeline2"
    for f in sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_sampling_from_prompt_states_matches_sampling_from_text(evaluated):
    from minisd.clip.data import tokenize
    from minisd.eval_prompts import load_prompts
    from minisd.evaluate.run import draw_samples
    from minisd.pipeline import load_pipeline

    root, _ = evaluated
    pipe = load_pipeline(root / "models" / "pipeline", "cpu")
    prompts = load_prompts(root / "prompts.json")[:3]
    with torch.no_grad():
        states = pipe.text_encoder(tokenize(pipe.tokenizer, [p["text"] for p in prompts] + [""]))[0]
    from_text = draw_samples(pipe, prompts, PARAMS)
    from_states = draw_samples(pipe, prompts, PARAMS, (states[:-1], states[-1]))
    assert from_states.shape == from_text.shape == (3, 3, 32, 32)
    assert np.abs(from_states.astype(int) - from_text.astype(int)).max() <= 1


def test_evaluate_samples_with_its_guidance_rescale(evaluated):
    from minisd.eval_prompts import load_prompts
    from minisd.evaluate.run import draw_samples
    from minisd.pipeline import load_pipeline, sample

    root, _ = evaluated
    pipe = load_pipeline(root / "models" / "pipeline", "cpu")
    prompts = load_prompts(root / "prompts.json")[:2]
    rescaled = PARAMS.model_copy(update={"guidance": 6.0, "guidance_rescale": 1.0})
    drawn = draw_samples(pipe, prompts, rescaled)
    texts = [p["text"] for p in prompts for _ in range(3)]
    direct = sample(pipe, texts, [0, 1, 2] * 2, 2, 6.0, batch_size=5, guidance_rescale=1.0)
    assert np.array_equal(drawn.reshape(direct.shape), direct)
    assert not np.array_equal(drawn, draw_samples(pipe, prompts, rescaled.model_copy(update={"guidance_rescale": 0.0})))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
class FakeInception(torch.nn.Module):
    """The FID network's calling convention, tiny: a linear map of each image's mean colour."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 8)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return self.proj(torch.nn.functional.adaptive_avg_pool2d(x / 255.0, 4).mean((2, 3)))


def test_inception_fid_is_zero_for_identical_sets_and_the_squared_shift_for_shifted_ones(tmp_path):
    torch.manual_seed(0)
    net = FakeInception()
    torch.jit.save(torch.jit.script(net), str(tmp_path / "inception.pt"))
    real = np.random.default_rng(0).integers(0, 200, (64, 16, 16), dtype=np.uint8)
    assert inception_fid(str(tmp_path / "inception.pt"), real, real.copy(), "cpu") == pytest.approx(0, abs=1e-6)
    # +20 grey levels moves every feature by W @ (20/255, 20/255, 20/255) and leaves the covariance
    # as it was, so the Frechet distance is exactly that shift's squared length
    shift = net.proj.weight.detach().double().sum(1) * 20 / 255
    fid = inception_fid(str(tmp_path / "inception.pt"), real + 20, real, "cpu")
    assert fid == pytest.approx(float(shift.pow(2).sum()), rel=1e-4)


def test_optional_metrics_use_local_weights_when_given(evaluated, tmp_path):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    root, _ = evaluated
    torch.jit.save(torch.jit.script(FakeInception()), str(tmp_path / "inception.pt"))
    tokenizer = tiny_tokenizer()
    text = dict(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=64, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    vision = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    clip = tmp_path / "clip"
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(clip)
    tokenizer.save_pretrained(clip)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(clip)

    params = PARAMS.model_copy(update={"inception_path": str(tmp_path / "inception.pt"), "clip_path": str(clip)})
    metrics = score_pipeline(params, _where(root, out="eval_optional", pipeline="pipeline_optional"))
    assert metrics["inception_fid"] >= 0.0 and 0.0 <= metrics["clip_score"] <= 100.0
    assert "inception_fid" not in metrics["skipped"] and "clip_score" not in metrics["skipped"]

    missing = PARAMS.model_copy(update={"clip_path": str(tmp_path / "nowhere")})
    with pytest.raises(StageError, match="evaluate.clip_path"):
        score_pipeline(missing, _where(root, out="eval_missing", pipeline="pipeline_missing"))


def test_frechet_and_kernel_distances():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([3.0, 0, 0, 0, 0, 0])
    assert frechet_distance(a, a + shift) == pytest.approx(9.0, rel=1e-6)  # a pure mean shift costs ||d||^2
    b = rng.normal(size=(400, 6))
    assert abs(kernel_distance(a, b)) < 0.05 < kernel_distance(a, a + shift)
    subset, reference = split_real(10, 3)
    assert len(subset) == 3 and set(subset).isdisjoint(reference) and len(reference) == 5


def test_carry_over_names_what_is_missing(tmp_path):
    (tmp_path / "unet.json").write_text(json.dumps({"val": {"loss": 0.3}, "final_val_loss": 0.3}))
    values, skipped = carry_over({"unet": tmp_path / "unet.json", "vae": tmp_path / "absent.json"})
    assert values == {"unet_val_loss": 0.3}
    assert set(skipped) == {"vae_psnr", "vae_ssim", "vae_ink_f1", "vae_paper_grey"}
    assert "not found" in skipped["vae_psnr"]
    (tmp_path / "vae.json").write_text(json.dumps({"val": {"psnr": 25.0}}))
    values, skipped = carry_over({"unet": tmp_path / "unet.json", "vae": tmp_path / "vae.json"})
    assert values == {"unet_val_loss": 0.3, "vae_psnr": 25.0}
    assert skipped == {"vae_ssim": f"{tmp_path / 'vae.json'} has no val/ssim",
                       "vae_ink_f1": f"{tmp_path / 'vae.json'} has no val/ink_f1",
                       "vae_paper_grey": f"{tmp_path / 'vae.json'} has no val/paper_grey"}


def test_loss_curves_read_dvclive_tsvs(tmp_path):
    unet, _ = _fake_training_logs(tmp_path)
    curves = read_curves(unet, "unet")
    assert list(curves) == ["unet: train/loss"]
    steps, values = curves["unet: train/loss"]
    assert steps.tolist() == [0, 10, 20] and values.tolist() == [1.0, 0.5, 0.2]


def test_loss_curves_share_axes_per_trainer_and_write_a_png(tmp_path):
    unet, vae = _fake_training_logs(tmp_path)
    (unet / "plots" / "metrics" / "val").mkdir()
    (unet / "plots" / "metrics" / "val" / "loss.tsv").write_text("step\tloss\n10\t0.6\n20\t0.3\n")
    (unet / "plots" / "metrics" / "train" / "lr.tsv").write_text("step\tlr\n0\t0.001\n20\t0.001\n")
    curves = {**read_curves(unet, "unet"), **read_curves(vae, "vae")}
    drawn = {ax.get_title(): ax for ax in loss_curves(curves).axes if ax.axison}
    assert list(drawn) == ["unet: loss", "unet: lr", "vae: psnr"]
    loss = drawn["unet: loss"]
    assert [line.get_label() for line in loss.get_lines()] == ["train/loss", "val/loss"]
    assert loss.get_yscale() == "log" and loss.get_xlabel() == "step" and drawn["vae: psnr"].get_yscale() == "linear"
    write_loss_curves(curves, tmp_path / "curves.png")
    write_loss_curves({}, tmp_path / "none.png")
    two_rows = cv2.imread(str(tmp_path / "curves.png"), cv2.IMREAD_GRAYSCALE)
    one_row = cv2.imread(str(tmp_path / "none.png"), cv2.IMREAD_GRAYSCALE)
    assert two_rows.shape == (2 * one_row.shape[0], 2 * one_row.shape[1])  # unet: loss, lr; vae: psnr
    assert two_rows.std() > one_row.std() > 0  # curves, axes and text drawn; the empty one holds just a note


def test_model_card_loads_as_a_hub_card_and_tells_the_run(evaluated):
    from huggingface_hub import ModelCard

    from minisd.config import parse_params
    from minisd.evaluate import write_model_card
    from minisd.evaluate.model_card import SHEET

    root, metrics = evaluated
    params = parse_params({"ingest": {"sources": [{"kind": "synthetic", "count": 160}]},
                           "unet": {"max_steps": 123}, "evaluate": {"license": "cc-by-4.0"}}, "test")  # fmt: skip
    report = root / "report.json"
    report.write_text(json.dumps({"sources": {"synthetic": {"accepted": 157}}}))
    pipeline = root / "models" / "pipeline"
    path = write_model_card(params, metrics, pipeline, report, root / "prompts.json", root / "results" / "eval" / SHEET)
    card = ModelCard.load(path)
    assert card.data.library_name == "diffusers" and card.data.pipeline_tag == "text-to-image"
    assert card.data.license == "cc-by-4.0"
    text = card.text
    assert "157 procedurally drawn doodles" in text and "| UNet training steps | `123` |" in text
    judge = metrics["ci95"]["judge_accuracy"]
    assert f"| {metrics['judge_accuracy']:.3g} | [{judge['low']:.2f}, {judge['high']:.2f}] |" in text
    classes = sorted({p["class"] for p in json.loads((root / "prompts.json").read_text()) if p["class"]})
    assert f"Classes ({len(classes)}): {', '.join(classes)}." in text
    assert (pipeline / SHEET).read_bytes() == (root / "results" / "eval" / SHEET).read_bytes()
    assert f"![samples]({SHEET})" in text


def test_model_card_data_lines_use_the_names_ingest_reported():
    """A file source is named by its stem (`ingest.run.source_names`): the card takes names from the report."""
    from minisd.config import parse_params
    from minisd.evaluate.model_card import data_lines

    params = parse_params({"ingest": {"sources": [{"kind": "synthetic", "count": 10},
                                                  {"kind": "quickdraw", "path": "quickdraw/cat.ndjson"}]}}, "test")  # fmt: skip
    report = {"sources": {"synthetic": {"accepted": 10}, "cat": {"accepted": 7}}}
    lines, datasets = data_lines(report, params)
    assert lines[0].startswith("- `synthetic`: 10 procedurally drawn doodles")
    assert lines[1].startswith("- `cat`: 7 Quick, Draw! drawings from `data/raw/quickdraw/cat.ndjson`")
    assert datasets == ["quickdraw"]
    assert data_lines({}, params)[0][1].startswith("- ? Quick, Draw! drawings")


def test_model_card_recipe_keys_are_evaluate_params_in_dvc_yaml():
    """A recipe key the stage does not list would leave a stale card after that param changed."""
    import yaml

    from minisd.evaluate.model_card import RECIPE

    listed = yaml.safe_load(open("dvc.yaml"))["stages"]["evaluate"]["params"]
    for key, _ in RECIPE:
        assert key in listed or key.split(".")[0] in listed, key
    assert "ingest.sources" in listed


def test_real_retrieval_counts_every_val_sketch_a_prompt_describes():
    from minisd.evaluate.alignment import describing_prompts

    prompts = [
        {"text": "a small circle in the top left", "class": "circle", "attributes": {"size": "small", "position": "top left"},
         "key": "v0"},
        {"text": "a square", "class": "square", "attributes": {"size": None, "position": None}, "key": "v1"},
        {"text": "something free", "class": None, "attributes": {"size": None, "position": None}},
    ]
    keys = ["v0", "v1", "v2", "v3", "v4"]
    labels = [("circle", "small", "top left"), ("square", "large", "center"), ("circle", "small", "top left"),
              ("circle", "large", "top left"), ("square", "small", "center")]
    # v0: its source; v1: the unlabelled prompt's source only; v2: same labels as prompt 0; v3, v4: none
    assert describing_prompts(prompts, keys, labels) == {0: {0}, 1: {1}, 2: {0}}
