"""Quick, Draw! reader (ndjson simplified or raw, detected per line; Google's 28x28 .npy bitmaps).

The reader only splits lines and peeks at `word`/`recognized` with a regex, so the class cap and
the recognized filter cost nothing for lines that are dropped; parsing and rendering run in workers.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from minisd.attributes import ink_bbox
from minisd.params.ingest import QuickDrawSource
from minisd.captions import with_article
from minisd.ingest.gates import Reject
from minisd.ingest.items import Item, slug
from minisd.ingest.placement import fit_to_spot, random_spot
from minisd.ingest.render import render_strokes
from minisd.stage import StageError

WORD = re.compile(rb'"word"\s*:\s*"((?:[^"\\]|\\.)*)"')
UNRECOGNIZED = re.compile(rb'"recognized"\s*:\s*false')
RAW_LIMIT = 1e5  # raw strokes are device pixels; anything beyond this is corrupt, not a big screen
BITMAP_PREFIX = "full_numpy_bitmap_"


def class_of_npy(path: Path) -> str:
    stem = path.stem
    return stem[len(BITMAP_PREFIX):] if stem.startswith(BITMAP_PREFIX) else stem


def _files(root: Path) -> list[Path]:
    return [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())


def read_quickdraw(source: QuickDrawSource, name: str, param: str) -> Iterator[Item]:
    root = Path(source.path)
    taken: Counter = Counter()
    for path in _files(root):
        rel = path.name if root.is_file() else path.relative_to(root).as_posix()
        suffix = path.suffix.lower()
        if suffix == ".ndjson":
            yield from _ndjson_items(path, rel, source, name, taken)
        elif suffix == ".npy":
            yield from _npy_items(path, rel, source, name, taken)
        else:
            yield Item(key=f"{name}-{slug(rel)}", origin=str(path), kind="rejected",
                       reason="not_an_image", detail="not .ndjson or .npy")  # fmt: skip


def _cap(taken: Counter, word: str, source: QuickDrawSource) -> bool:
    if source.max_per_class is not None and taken[word] >= source.max_per_class:
        return True
    taken[word] += 1
    return False


def _ndjson_items(path, rel, source, name, taken) -> Iterator[Item]:
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            item = Item(key=f"{name}-{slug(rel.rsplit('.', 1)[0])}-{n:07d}", origin=f"{path}:{n}",
                        kind="quickdraw_line", payload=line)  # fmt: skip
            word = WORD.search(line)
            if source.recognized_only and UNRECOGNIZED.search(line):
                item.kind, item.reason, item.payload = "rejected", "not_recognized", None
            elif word and _cap(taken, word.group(1).decode("utf-8", "replace"), source):
                item.kind, item.reason, item.payload = "rejected", "class_cap", None
            yield item


def _npy_items(path, rel, source, name, taken) -> Iterator[Item]:
    word = class_of_npy(path)
    base = f"{name}-{slug(rel.rsplit('.', 1)[0])}"
    try:
        bitmaps = np.load(path, mmap_mode="r", allow_pickle=False)
        if bitmaps.dtype != np.uint8 or bitmaps.ndim != 2 or bitmaps.shape[1] != 28 * 28:
            raise ValueError(f"expected (N, 784) uint8, got {bitmaps.shape} {bitmaps.dtype}")
    except (ValueError, OSError, EOFError) as error:
        yield Item(key=base, origin=str(path), kind="rejected", reason="undecodable", detail=str(error))
        return
    caption = caption_for(source.caption_template, word)
    for i in range(len(bitmaps)):
        item = Item(key=f"{base}-{i:07d}", origin=f"{path}[{i}]", kind="bitmap",
                    payload=bytes(bitmaps[i]), captions=[caption], label=word)  # fmt: skip
        if _cap(taken, word, source):
            item.kind, item.reason, item.payload = "rejected", "class_cap", None
        yield item


# ----------------------------------------------------------------------------- worker side


NUMBER_TYPES = frozenset({int, float})  # exact types: JSON's true/false are bools, never coordinates


def parse_line(line: bytes, source: QuickDrawSource) -> tuple[dict, list[np.ndarray]]:
    """One ndjson line -> (record, strokes as (n, 2) float arrays). Raises Reject."""
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Reject("bad_json", str(error)[:80]) from None
    if not isinstance(record, dict):
        raise Reject("bad_json", "not a JSON object")
    if source.recognized_only and record.get("recognized") is False:
        raise Reject("not_recognized")
    word = record.get("word")
    if not isinstance(word, str) or not word.strip():
        raise Reject("missing_caption", "no `word`")
    drawing = record.get("drawing")
    if not isinstance(drawing, list) or not drawing:
        raise Reject("no_strokes")
    strokes, raw = [], False
    for stroke in drawing:
        if not isinstance(stroke, list) or len(stroke) not in (2, 3) or not all(isinstance(a, list) for a in stroke):
            raise Reject("malformed_strokes", "a stroke is not [[x...], [y...](, [t...])]")
        if len(set(map(len, stroke))) != 1:
            raise Reject("malformed_strokes", "x, y (and t) differ in length")
        if not stroke[0]:
            continue
        # one set of types per stroke, not a Python call per coordinate (~10% of a real drawing's time)
        if not {type(v) for a in stroke[:2] for v in a} <= NUMBER_TYPES:
            raise Reject("coords_out_of_range", "non-numeric or non-finite coordinate")
        xy = np.array(stroke[:2], dtype=np.float64)
        if not np.isfinite(xy).all():  # json reads NaN and Infinity
            raise Reject("coords_out_of_range", "non-numeric or non-finite coordinate")
        raw = raw or len(stroke) == 3
        strokes.append(xy.T)
    if not strokes:
        raise Reject("no_strokes", "every stroke is empty")
    points = np.concatenate(strokes)
    if raw:
        if np.abs(points).max() > RAW_LIMIT:
            raise Reject("coords_out_of_range", f"raw coordinate beyond {RAW_LIMIT:g}")
    elif points.min() < 0 or points.max() > 255:
        raise Reject("coords_out_of_range", f"simplified coordinates span {points.min():g}..{points.max():g}")
    return record, strokes


def caption_for(template: str, word: str) -> str:
    """`{word}` is the class; `{a_word}` adds its article ("an airplane", "a unicorn", "scissors")."""
    return template.format(word=word, a_word=with_article(word))


def check_template(template: str, param: str) -> None:
    try:
        caption_for(template, "x")
    except (KeyError, IndexError, ValueError) as error:
        allowed = "{word} and {a_word}"
        raise StageError(f"{param}.caption_template: {template!r} may use only {allowed} ({error})") from None


def layout_rng(source: QuickDrawSource, key: str) -> np.random.Generator:
    """The placement stream of one drawing: from the source seed and the drawing's own key (file and
    line), so it does not depend on chunking, worker count or the other files."""
    return np.random.default_rng([source.seed, zlib.crc32(key.encode())])


def place_strokes(strokes: list[np.ndarray], size: int, source: QuickDrawSource, rng) -> np.ndarray:
    size_word, cell = random_spot(rng)
    points = np.concatenate(strokes)
    transform = fit_to_spot(points.min(axis=0), points.max(axis=0), size, source.stroke_width, size_word, cell, rng)
    return render_strokes(strokes, size, source.stroke_width, 0.0, transform)


def place_bitmap(gray: np.ndarray, size: int, rng) -> np.ndarray:
    """A raster drawing (ink on white) scaled and moved as place_strokes moves strokes."""
    box = ink_bbox(gray)
    if box is None:
        raise Reject("blank")
    size_word, cell = random_spot(rng)
    scale, offset = fit_to_spot(np.array(box[:2], float), np.array(box[2:], float), size, 0.0, size_word, cell, rng)
    matrix = np.array([[scale, 0, offset[0]], [0, scale, offset[1]]])
    return cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderValue=255)  # fmt: skip
