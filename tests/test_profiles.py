import shutil
import subprocess
import sys

import pytest
import yaml

from minisd import profiles
from minisd.config import load_params
from minisd.params.base import ParamsError


@pytest.fixture
def params_copy(tmp_path):
    path = tmp_path / "params.yaml"
    shutil.copy("params.yaml", path)
    return path


@pytest.mark.parametrize("name", ["tiny", "seed", "seed-scratch", "quickdraw"])
def test_profile_applies_and_validates(name, params_copy):
    profiles.apply(name, params_copy)
    params = load_params(params_copy)
    overrides = profiles.load_overrides(name)
    for section, values in overrides.items():
        for key, value in values.items():
            got = getattr(getattr(params, section), key)
            if hasattr(got, "model_dump"):
                continue
            if isinstance(got, list) and got and hasattr(got[0], "model_dump"):
                got = [g.model_dump(exclude_unset=True) for g in got]
            assert got == value, f"{section}.{key}"


def test_apply_keeps_comments_and_untouched_keys(params_copy):
    before = params_copy.read_text()
    profiles.apply("tiny", params_copy)
    after = params_copy.read_text()
    assert "# Offline default profile" in after
    assert "scratch: BPE trained on the captions" in after
    untouched = yaml.safe_load(before)["unet"]["noise_scheduler"]
    assert yaml.safe_load(after)["unet"]["noise_scheduler"] == untouched


def test_seed_profile_shows_real_values(params_copy):
    profiles.apply("seed", params_copy)
    raw = yaml.safe_load(params_copy.read_text())
    assert raw["unet"]["block_out_channels"] == [128, 256, 512]
    assert raw["vae"]["path"] == "stabilityai/sd-vae-ft-mse"
    assert raw["text_encoder"]["path"] == "runwayml/stable-diffusion-v1-5"


def test_bad_profile_value_fails_before_writing(tmp_path, params_copy, monkeypatch):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "bad.yaml").write_text("unet:\n  lr: -3\n")
    monkeypatch.chdir(tmp_path)
    before = params_copy.read_text()
    with pytest.raises(ParamsError, match="unet.lr"):
        profiles.apply("bad", params_copy)
    assert params_copy.read_text() == before


def test_set_args_flags_are_dvc_ready():
    args = profiles.set_args({"unet": {"lr": 0.1, "block_out_channels": [8, 16]}, "vae": {"path": None}})
    assert args == ["unet.lr=0.1", "unet.block_out_channels=[8, 16]", "vae.path=null"]


def test_cli_prints_set_args():
    out = subprocess.run(
        [sys.executable, "-m", "minisd", "profile", "tiny", "--set-args"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "-S 'unet.max_steps=12'" in out
