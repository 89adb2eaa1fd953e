import cv2
import numpy as np
import pytest
from _tiny_models import make_models
from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

from minisd.__main__ import main
from minisd.params.evaluate import GUIDANCE, GUIDANCE_RESCALE
from minisd.pipeline import MiniDiffusionPipeline, export_pipeline, load_pipeline, sample


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("generate")
    models = make_models(root, image_channels=3, image_size=32)  # RGB VAE: the output is still gray
    return export_pipeline(models, root / "pipeline")


def _generate(argv):
    with pytest.raises(SystemExit) as done:
        main(["generate", *argv])
    return done.value.code


def test_generate_writes_a_png_grid_of_the_asked_size(exported, tmp_path, capsys):
    out = tmp_path / "sub" / "out.png"
    code = _generate(["a small circle in the top left", "-n", "3", "--steps", "2", "--guidance", "4",
                      "--seed", "0", "--batch-size", "2", "--pipeline", str(exported), "-o", str(out)])
    assert code == 0
    image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.dtype == np.uint8 and image.shape == (66, 66)  # 2x2 grid of 32 px + gutter
    assert str(out) in capsys.readouterr().out


def test_generate_size_option_and_seed_convention(exported, tmp_path):
    out = tmp_path / "one.png"
    assert _generate(["a square", "--steps", "2", "--size", "48", "--seed", "5",
                      "--pipeline", str(exported), "-o", str(out)]) == 0
    image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert image.shape == (48, 48)
    pipe = load_pipeline(exported, "cpu")
    again = sample(pipe, ["a square"], [5], steps=2, guidance=GUIDANCE, size=48,
                   guidance_rescale=GUIDANCE_RESCALE)[0]  # the CLI's defaults
    assert np.array_equal(image, again)  # image i of `generate --seed s` is sample seed s + i


def test_guidance_rescale_reaches_the_sampler(exported, tmp_path):
    pipe = load_pipeline(exported, "cpu")
    plain, rescaled = (sample(pipe, ["a square"], [3], steps=3, guidance=6.0, guidance_rescale=r, size=32)[0]
                       for r in (0.0, 1.0))
    assert not np.array_equal(plain, rescaled)
    out = tmp_path / "rescaled.png"
    assert _generate(["a square", "--steps", "3", "--guidance", "6", "--guidance-rescale", "1", "--seed", "3",
                      "--size", "32", "--pipeline", str(exported), "-o", str(out)]) == 0
    assert np.array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), rescaled)


def test_missing_pipeline_says_how_to_get_one(tmp_path, capsys):
    code = _generate(["a star", "--pipeline", str(tmp_path / "nothing"), "-o", str(tmp_path / "x.png")])
    assert code == 2
    err = capsys.readouterr().err
    assert "dvc repro" in err and "dvc pull" in err and not (tmp_path / "x.png").exists()


def test_bad_arguments_are_named(exported, tmp_path, capsys):
    assert _generate(["a star", "-n", "0", "--pipeline", str(exported), "-o", str(tmp_path / "x.png")]) == 2
    assert "--num-images" in capsys.readouterr().err
    assert _generate(["a star", "--size", "30", "--pipeline", str(exported), "-o", str(tmp_path / "x.png")]) == 2
    assert "--size" in capsys.readouterr().err
    assert _generate(["a star", "--guidance-rescale", "1.5", "--pipeline", str(exported),
                      "-o", str(tmp_path / "x.png")]) == 2
    assert "--guidance-rescale" in capsys.readouterr().err


def test_mini_diffusion_pipeline_is_a_stock_pipeline(exported):
    pipe = MiniDiffusionPipeline.from_pretrained(exported, device="cpu")
    assert type(pipe) is StableDiffusionPipeline
    assert isinstance(pipe.scheduler, DPMSolverMultistepScheduler)
    assert pipe.scheduler.config.algorithm_type == "dpmsolver++"
    rebuilt = MiniDiffusionPipeline.from_components(pipe.tokenizer, pipe.text_encoder, pipe.vae, pipe.unet,
                                                    pipe.scheduler)
    assert type(rebuilt) is StableDiffusionPipeline and rebuilt.safety_checker is None
    with pytest.raises(TypeError, match="from_components"):  # the seed's constructor call: a clear pointer
        MiniDiffusionPipeline(pipe.tokenizer, pipe.text_encoder, pipe.vae, pipe.unet, pipe.scheduler)
    from_dirs = MiniDiffusionPipeline.from_model_dirs(exported.parent / "models", scheduler="ddim")
    assert type(from_dirs.scheduler).__name__ == "DDIMScheduler"
    # the sampler keeps the training schedule's betas
    assert from_dirs.scheduler.config.beta_end == pipe.scheduler.config.beta_end == 0.012
