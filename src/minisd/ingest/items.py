"""The one item type every reader yields and every worker consumes.

Readers stay cheap (listing, caption lookup, line splitting) and run in the main process in a
fixed order; everything expensive happens in workers. A reader that already knows an item is bad
(no caption, over the class cap) yields it with `reason` set, so it is still counted and recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

KINDS = ("synthetic", "raster", "quickdraw_line", "bitmap", "rejected")


@dataclass
class Item:
    key: str
    origin: str  # original path, path:line or path[index]: what rejects.csv shows a person
    kind: str
    payload: Any = None  # a path, an ndjson line (bytes), a 28x28 bitmap (bytes), or a synthetic index
    captions: list[str] = field(default_factory=list)
    label: str | None = None
    caption_file: str | None = None  # read by the worker when set (imagefolder's texts/ and sidecars)
    reason: str | None = None
    detail: str = ""


@dataclass
class Result:
    key: str
    origin: str
    record: dict | None = None  # shards.to_record(...) output
    tar: bytes = b""  # the record as tar members (tarbytes.sample_bytes), ready to append to a shard
    reason: str | None = None
    detail: str = ""
    digest: bytes = b""
    phash: int = 0
    caption: str = ""  # first caption, for the preview


def slug(text: str) -> str:
    """Key-safe form of an original id: no dots (webdataset), no slashes, no spaces."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "x"
