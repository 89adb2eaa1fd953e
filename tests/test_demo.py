"""The demo as a person uses it: the app served on a local port, driven through Gradio's client."""

from __future__ import annotations

import json

import pytest
from _tiny_models import make_models

from minisd import demo
from minisd.pipeline import export_pipeline
from minisd.stage import StageError

gradio_client = pytest.importorskip("gradio_client", reason='the demo extra is not installed (pip install -e ".[demo]")')


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_models(root)
    return export_pipeline(root / "models", root / "pipeline")


@pytest.fixture(scope="module")
def client(pipeline_dir, tmp_path_factory):
    prompts = tmp_path_factory.mktemp("prompts") / "prompts.json"
    prompts.write_text(json.dumps([{"text": "a small star in the top left", "class": "star"}]))
    app = demo.load_demo(pipeline_dir, prompts)
    demo.launch(app, "127.0.0.1", None, block=False)
    try:
        yield gradio_client.Client(app.local_url, verbose=False)
    finally:
        app.close()


def test_a_prompt_in_images_out(client):
    gallery, info = client.predict("a small star in the top left", 3, 2, 3.0, 0.7, 5, api_name="/draw")
    assert len(gallery) == 3
    assert "3 image(s) of 'a small star in the top left'" in info and "rescaled 0.7, seeds 5..7" in info


@pytest.mark.parametrize("request_args, message", [
    (("   ", 1, 2, 3.0, 0.7, 0), "type a prompt"),
    (("a star", 1, 100000, 3.0, 0.7, 0), "100000 is greater than maximum value 100"),  # the slider's own bound
    (("a star", 0, 2, 3.0, 0.7, 0), "0 is less than minimum value 1"),
    (("a star", 1, 2, -1.0, 0.7, 0), "-1.0 is less than minimum value 0"),
    (("a star", 1, 2.5, 3.0, 0.7, 0), "steps must be a whole number"),  # within the bounds: ours
])  # fmt: skip
def test_a_bad_request_gets_a_message_and_the_app_keeps_serving(client, request_args, message):
    with pytest.raises(Exception, match=message):
        client.predict(*request_args, api_name="/draw")
    gallery, _ = client.predict("a circle", 1, 2, 3.0, 0.7, 0, api_name="/draw")
    assert len(gallery) == 1


def test_check_request_bounds_every_field_itself():
    """The same bounds without Gradio in front (a future component that does not check them)."""
    assert demo.check_request(" a star ", 2, 20, 4, 1, 7) == ("a star", 2, 20, 4.0, 1.0, 7)
    for args, message in [((" ", 1, 1, 1, 0, 0), "type a prompt"),
                          (("x", 17, 1, 1, 0, 0), "images must be a number from 1 to 16"),
                          (("x", 1, 101, 1, 0, 0), "steps must be"), (("x", 1, 1, 20.5, 0, 0), "guidance must be"),
                          (("x", 1, 1, 1, 1.5, 0), "guidance_rescale must be a number from 0.0 to 1.0"),
                          (("x", 1, 1, 1, 0, -1), "seed must be"), (("x", True, 1, 1, 0, 0), "images must be"),
                          (("x", 1, 1, float("nan"), 0, 0), "guidance must be")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            demo.check_request(*args)


def test_examples_are_the_eval_prompts_one_per_class_first(tmp_path):
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps([
        {"text": "a small star at the top", "class": "star"}, {"text": "a large star", "class": "star"},
        {"text": "a moon on the left", "class": "moon"}, {"text": "anything", "class": None},
    ]))  # fmt: skip
    assert demo.example_prompts(prompts) == ["a moon on the left", "a small star at the top", "a large star", "anything"]
    assert demo.example_prompts(tmp_path / "missing.json") == list(demo.FALLBACK_EXAMPLES)


def test_a_missing_or_half_written_pipeline_names_the_command(pipeline_dir, tmp_path):
    with pytest.raises(StageError, match=r"no exported pipeline at .*run `dvc repro`"):
        demo.load_demo(tmp_path / "nothing")
    half = tmp_path / "half"
    half.mkdir()
    for part in pipeline_dir.iterdir():
        if part.name != "unet":
            (half / part.name).symlink_to(part)
    with pytest.raises(StageError, match=r"incomplete or damaged .*`dvc repro evaluate`"):
        demo.load_demo(half)
