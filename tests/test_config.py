import pytest
import yaml

from minisd.config import Params, load_params, parse_params
from minisd.params.base import SECTIONS, ParamsError, load_section, load_sections
from minisd.params.unet import UnetParams
from minisd.params.vae import VaeParams


def default_raw():
    with open("params.yaml") as f:
        return yaml.safe_load(f)


def test_default_params_validate():
    params = load_params("params.yaml")
    assert params.ingest.image_size == 128
    assert params.unet.noise_scheduler.num_train_timesteps == 1000


def test_every_default_key_is_explicit_in_params_yaml():
    """A key missing from params.yaml would be invisible to `dvc exp show` and to DVC's hashing."""
    raw = default_raw()
    full = load_params("params.yaml").model_dump()

    def walk(model, data, prefix):
        for key, value in model.items():
            assert key in data, f"{prefix}{key} is not written in params.yaml"
            if isinstance(value, dict):
                walk(value, data[key], f"{prefix}{key}.")

    walk({k: v for k, v in full.items() if k != "ingest"}, raw, "")
    walk({k: v for k, v in full["ingest"].items() if k != "sources"}, raw["ingest"], "ingest.")


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda r: r["unet"].update(lr=-1), "unet.lr"),
        (lambda r: r["vae"].update(typo=1), "vae.typo"),
        (lambda r: r["ingest"]["sources"][0].update(kind="nope"), "ingest.sources.0"),
        (lambda r: r["unet"].update(down_block_types=["DownBlock2D"]), "unet"),
        (lambda r: r["vae"].update(source="pretrained", path=None), "vae"),
        (lambda r: r["evaluate"].update(scheduler="magic"), "evaluate.scheduler"),
    ],
)
def test_bad_value_names_the_key(edit, key):
    raw = default_raw()
    edit(raw)
    with pytest.raises(ParamsError) as info:
        parse_params(raw, "params.yaml")
    assert f"  {key}" in str(info.value)


def test_a_stage_reads_only_its_sections_each_equal_to_the_whole_files():
    """Stages load their sections alone (so DVC tracks only those modules); the result is the same
    model the whole file gives, and SECTIONS names exactly the whole file's sections."""
    assert SECTIONS == tuple(Params.model_fields)
    whole = load_params("params.yaml")
    models = {key: type(getattr(whole, key)) for key in SECTIONS}
    assert load_sections("params.yaml", **models) == tuple(getattr(whole, key) for key in SECTIONS)


def test_a_section_names_its_bad_key_and_a_top_level_typo_fails_every_stage(tmp_path):
    raw = default_raw()
    raw["unet"]["lr"] = -1
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"\n  unet\.lr: Input should be greater than 0 \(got -1\)"):
        load_section("unet", UnetParams, path)
    assert load_section("vae", VaeParams, path) == load_params("params.yaml").vae  # another stage is not blocked

    raw["unet"]["lr"] = 0.002
    raw["unt"] = {"lr": 0.002}
    path.write_text(yaml.safe_dump(raw))
    for key, model in (("unet", UnetParams), ("vae", VaeParams)):
        with pytest.raises(ParamsError, match=r"\n  unt: Extra inputs are not permitted"):
            load_section(key, model, path)


def test_missing_params_file(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_params_yaml_ships_the_config_defaults():
    """One source of truth: every key params.yaml sets equals the default in its params/ module, so tests built
    from the defaults train the recipe that ships (only the data sources are the file's own)."""
    import yaml

    from minisd.config import Params, parse_params

    shipped = parse_params(yaml.safe_load(open("params.yaml")))
    assert shipped == Params(ingest=shipped.ingest)
