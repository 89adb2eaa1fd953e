"""safetensors files that are written as a stream and read through a memory map.

`safetensors.torch.save_file` needs every tensor in RAM and `safe_open(...).get_tensor` copies the
whole tensor out of the file. A cache can be larger than RAM, so the embeddings file is written
block by block and read back as `np.memmap`-backed tensors: indexing a shuffled batch touches only
the rows it asks for. The bytes follow the safetensors format exactly (8-byte little-endian header
length, JSON header, raw little-endian data), so `safe_open` and `load_file` read these files too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from minisd.stage import StageError

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
_ST_NAMES = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32"}
_FROM_ST = {v: k for k, v in _ST_NAMES.items()}


class CacheError(StageError):
    """A cache that is missing, malformed or made by other models; the message says what to rerun."""


def read_index(folder: Path, name: str, fmt: str, what: str, stage: str) -> dict:
    """A cache's JSON index, refused with the stage to rerun when missing or of another format."""
    path = folder / name
    if not path.is_file():
        raise CacheError(f"{folder}: no {what} cache here ({name} missing; run `dvc repro {stage}`)")
    index = json.loads(path.read_text())
    if index.get("format") != fmt:
        raise CacheError(f"{path}: format {index.get('format')!r}, this code reads {fmt!r}; rerun {stage}")
    return index


def cache_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise CacheError(f"cache dtype must be one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[name]


Spec = tuple[str, torch.dtype, tuple[int, ...]]  # name, dtype, shape


def _header(specs: list[Spec], metadata: dict[str, str] | None) -> tuple[bytes, int]:
    header: dict = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in sorted(metadata.items())}
    offset = 0
    for name, dtype, shape in specs:
        nbytes = int(np.prod(shape, dtype=np.int64)) * torch.empty((), dtype=dtype).element_size()
        header[name] = {"dtype": _ST_NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    return raw + b" " * (-len(raw) % 8), offset  # data starts 8-byte aligned, as safetensors requires


def write_stream(
    path: str | Path,
    specs: list[Spec],
    blocks: Iterable[torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """Write tensors `specs` (name, dtype, shape), whose bytes arrive in order as `blocks`.

    Blocks are row ranges of the tensors in spec order; the total must match the header exactly.
    Written to a temporary name and renamed, so a crash never leaves a half file under the real name.
    """
    path = Path(path)
    header, expected = _header(specs, metadata)
    tmp = path.with_name(path.name + ".tmp")
    written = 0
    with open(tmp, "wb") as f:
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        for block in blocks:
            data = block.detach().cpu().contiguous().view(torch.uint8).numpy()
            f.write(memoryview(data))
            written += data.nbytes
    if written != expected:
        tmp.unlink()
        raise CacheError(f"{path}: wrote {written} data bytes but the header declares {expected}")
    os.replace(tmp, path)


def open_mmap(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors of a safetensors file as read-only-in-spirit memory-mapped tensors, plus its metadata.

    The map is copy-on-write: writing to a returned tensor never touches the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
    except (OSError, ValueError) as error:
        raise CacheError(f"{path}: not a readable safetensors file ({error})") from error
    metadata = header.pop("__metadata__", None) or {}
    data_bytes = max((v["data_offsets"][1] for v in header.values()), default=0)
    raw = np.memmap(path, dtype=np.uint8, mode="c", offset=8 + n, shape=(data_bytes,)) if data_bytes else None
    tensors = {}
    for name, spec in header.items():
        dtype = _FROM_ST.get(spec["dtype"])
        if dtype is None:
            raise CacheError(f"{path}: tensor {name!r} has unsupported dtype {spec['dtype']}")
        begin, end = spec["data_offsets"]
        if end == begin:
            tensors[name] = torch.empty(spec["shape"], dtype=dtype)
        else:
            tensors[name] = torch.from_numpy(raw[begin:end]).view(dtype).reshape(spec["shape"])
    return tensors, metadata
