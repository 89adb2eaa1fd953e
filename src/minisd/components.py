"""What every model builder shares: seeded init, pretrained loading, param errors, weights identity.

`source: scratch` builds each model from its params section with a fixed seed, so the offline
default needs no download and gives byte-identical weights on every run. `source: pretrained`
goes through the libraries' own `from_pretrained` (a hub id or a local folder, plus `subfolder`);
`load_pretrained` here is the only place that may reach the hub, and only when params say so.
The builders live with their models (`text_encoder.py`, `vae/model.py`, `unet/model.py`), so
editing one model's code reruns only the stages that use that model.
"""

from __future__ import annotations

import hashlib
import math
import re
from contextlib import contextmanager
from pathlib import Path

import torch

from minisd.params.base import PretrainedRef
from minisd.stage import StageError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ComponentError(StageError):
    """A model component that cannot be built or loaded; names the params key to fix."""


# ----------------------------------------------------------------------------- helpers


@contextmanager
def seeded(seed: int):
    """Random init from `seed` without disturbing the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _looks_local(path: str) -> bool:
    return Path(path).exists() or path.startswith((".", "/", "~")) or not HUB_ID.match(path)


def _how_to_fix(section: str, path: str) -> str:
    return (
        f"Set `{section}.path` to a local folder saved with save_pretrained (for a hub model, run "
        f"`huggingface-cli download {path if HUB_ID.match(path) else '<hub-id>'} --local-dir <folder>` "
        f"on a machine with network and copy the folder here; with `{section}.subfolder` if the "
        f"weights sit in a subfolder), or use `{section}.source: scratch`."
    )


def load_pretrained(cls, ref: PretrainedRef, component: str, section: str, **kwargs):
    """`cls.from_pretrained(ref.path, subfolder=ref.subfolder)` with an error that says what to change."""
    path = ref.path
    where = f"{path!r}" + (f" (subfolder {ref.subfolder!r})" if ref.subfolder else "")
    if _looks_local(path) and not Path(path).expanduser().is_dir():
        raise ComponentError(
            f"{component}: `{section}.path` is {where}, which is not an existing folder. " + _how_to_fix(section, path)
        )
    if ref.subfolder:
        if _looks_local(path) and not (Path(path).expanduser() / ref.subfolder).is_dir():
            raise ComponentError(
                f"{component}: `{section}.subfolder` is {ref.subfolder!r}, but {path!r} has no such folder. "
                + _how_to_fix(section, path)
            )
        kwargs["subfolder"] = ref.subfolder
    try:
        return cls.from_pretrained(str(Path(path).expanduser()) if _looks_local(path) else path, **kwargs)
    except (OSError, ValueError) as error:  # offline hub, missing files, bad id (HFValidationError)
        first = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else type(error).__name__
        raise ComponentError(
            f"{component}: cannot load pretrained weights from `{section}.path` = {where}: {first}. "
            + _how_to_fix(section, path)
        ) from error


def param_error(section: str, key: str, message: str) -> ComponentError:
    return ComponentError(f"{section}.{key}: {message}")


# ----------------------------------------------------------------------------- shapes


def norm_groups(section: str, channels: list[int]) -> int:
    """GroupNorm groups: SD's 32 whenever the channels allow it, fewer only for tiny test models."""
    groups = math.gcd(32, *channels)  # a divisor of every width: (48, 96, 192) gets 16
    if groups < 4 or any(c < 8 for c in channels):
        raise param_error(
            section, "block_out_channels", f"{channels}: use multiples of 8 (GroupNorm needs >= 4 groups; SD uses 32)"
        )
    return groups


# ----------------------------------------------------------------------------- identity of saved models


def weights_hash(folder: str | Path) -> str:
    """sha256 over a saved folder's configs, vocab files and safetensors, by sorted relative path.

    Downstream caches record it, so a retrained model can never be paired with stale caches.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: model folder not found")
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix in {".json", ".txt", ".safetensors"}
    )
    if not any(p.suffix == ".safetensors" for p in files) and not any(p.name == "tokenizer.json" for p in files):
        raise FileNotFoundError(f"{folder}: no *.safetensors weights or tokenizer files to hash")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()
