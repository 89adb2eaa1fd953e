"""Profiles: named sets of param overrides written into params.yaml as real values.

`python -m minisd profile seed` merges profiles/seed.yaml into params.yaml (comments kept), so
`dvc exp show` displays the actual values rather than a hidden profile name. `--set-args` prints
the same overrides as `-S key=value` flags for `dvc exp run` instead of editing the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ruamel.yaml import YAML

from minisd.config import parse_params

PROFILES_DIR = Path("profiles")


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml


def available() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_overrides(name: str) -> dict:
    path = PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise SystemExit(f"error: no profile {name!r} in {PROFILES_DIR}/ (have: {', '.join(available())})")
    return _yaml().load(path) or {}


def merge(base, overrides) -> None:
    """Deep-merge in place; mappings merge key by key, anything else (lists too) is replaced."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value


def set_args(overrides: dict, prefix: str = "") -> list[str]:
    """Leaves as dvc's `-S key=value`, values in YAML flow style so lists survive."""
    args = []
    for key, value in overrides.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            args += set_args(value, f"{name}.")
        else:
            args.append(f"{name}={json.dumps(_plain(value))}")
    return args


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def apply(name: str, params_path: Path = Path("params.yaml")) -> None:
    yaml = _yaml()
    params = yaml.load(params_path)
    merge(params, load_overrides(name))
    parse_params(_plain(params), f"{params_path} + profile {name}")  # validate before writing
    with params_path.open("w") as f:
        yaml.dump(params, f)


def run(args: argparse.Namespace) -> int:
    if args.set_args:
        print(" ".join(f"-S '{a}'" for a in set_args(load_overrides(args.name))))
        return 0
    apply(args.name, Path(args.params))
    print(f"applied profile {args.name!r} to {args.params}; see `git diff {args.params}`", file=sys.stderr)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="profile name: a file profiles/<name>.yaml")
    parser.add_argument("--params", default="params.yaml", help="params file to edit")
    parser.add_argument("--set-args", action="store_true", help="print `dvc exp run -S` flags instead")
    parser.set_defaults(run=run)
