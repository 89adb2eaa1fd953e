"""Where source files live: `data/raw/`, which the `ingest` stage in dvc.yaml always depends on.

A relative source path is read under data/raw/, so whatever a user drops there is already a DVC
dependency and `dvc status` notices it change, with no edit to dvc.yaml. A path outside every dep
of `ingest` would be invisible to DVC (ingest would never rerun when its files change, silently),
so the stage refuses it up front and says how to fix it.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import yaml

from minisd.params.ingest import IngestParams
from minisd.stage import StageError

RAW = Path("data") / "raw"
DVC_YAML = Path("dvc.yaml")
STAGE = "ingest"


def resolve(path: str, raw_dir: str | Path = RAW) -> Path:
    """A source path as given in params: relative to `raw_dir`, or absolute."""
    given = Path(path).expanduser()
    return given if given.is_absolute() else Path(raw_dir) / given


def resolve_sources(params: IngestParams, raw_dir: str | Path = RAW) -> IngestParams:
    """The same params with every file source's path resolved (origins and errors then show it)."""
    sources = [
        s if s.kind == "synthetic" else s.model_copy(update={"path": str(resolve(s.path, raw_dir))})
        for s in params.sources
    ]
    return params.model_copy(update={"sources": sources})


def declared_deps(dvc_yaml: str | Path = DVC_YAML, stage: str = STAGE) -> list[Path] | None:
    """Absolute paths of the stage's deps in dvc.yaml; None when there is no dvc.yaml (not run by DVC)."""
    dvc_yaml = Path(dvc_yaml)
    if not dvc_yaml.is_file():
        return None
    stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages") or {}
    deps = (stages.get(stage) or {}).get("deps") or []
    return [Path(os.path.abspath(dvc_yaml.parent / d)) for d in deps if isinstance(d, str)]


def check_declared(params: IngestParams, raw_dir: str | Path = RAW, dvc_yaml: str | Path = DVC_YAML) -> None:
    """Every file source lies inside a dep of the ingest stage, or a StageError says how to fix it."""
    deps = declared_deps(dvc_yaml)
    if deps is None:
        return
    for i, source in enumerate(params.sources):
        if source.kind == "synthetic":
            continue
        path = Path(os.path.abspath(resolve(source.path, raw_dir)))
        if any(path == dep or dep in path.parents for dep in deps):
            continue
        inside = Path(raw_dir) / path.name
        raise StageError(
            f"ingest.sources[{i}].path: {source.path} ({path}) lies outside every dependency of the "
            f"`{STAGE}` stage in {dvc_yaml}, so DVC would never rerun ingest when its files change. "
            f"Move it under {raw_dir}/ (paths are relative to it):\n"
            f"    mv {shlex.quote(str(path))} {shlex.quote(str(inside))}\n"
            f"and set ingest.sources[{i}].path: {path.name} (or list {path} under stages.{STAGE}.deps in {dvc_yaml})"
        )


def missing_path_hint(given: str, raw_dir: str | Path = RAW) -> str:
    """What to add when a source path does not exist: relative paths are read under `raw_dir`."""
    if Path(given).expanduser().is_absolute():
        return ""
    raw = Path(raw_dir).as_posix().rstrip("/")
    hint = f" (relative source paths are read under {raw}/)"
    if given.startswith(raw + "/"):
        hint += f"; write {given[len(raw) + 1:]!r}, not {given!r}"
    return hint
