import pytest
import yaml

from minisd.config import ParamsError, load_params, parse_params


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


def test_missing_params_file(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_params_yaml_ships_the_config_defaults():
    """One source of truth: every key params.yaml sets equals config.py's default, so tests built
    from the defaults train the recipe that ships (only the data sources are the file's own)."""
    import yaml

    from minisd.config import Params, parse_params

    shipped = parse_params(yaml.safe_load(open("params.yaml")))
    assert shipped == Params(ingest=shipped.ingest)
