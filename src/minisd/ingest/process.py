"""Per-item work, run in pool workers: load, normalize, gate, hash and encode one item.

Any exception for one item becomes a recorded rejection; only a broken worker process stops the run.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass

import cv2
import numpy as np

from minisd.attributes import measure
from minisd.captions import layout_captions
from minisd.params.ingest import GateParams, NormalizeParams
from minisd.ingest import imagefolder, quickdraw, synthetic
from minisd.ingest.decode import decode
from minisd.ingest.gates import Reject, check_ink, content_hash, phash
from minisd.ingest.items import Item, Result, slug
from minisd.ingest.normalize import WORK_FACTOR, finish, normalize
from minisd.ingest.render import render_strokes
from minisd.ingest.tarbytes import sample_bytes
from minisd.shards import Sample, to_record


@dataclass(frozen=True)
class WorkerConfig:
    image_size: int
    normalize: NormalizeParams
    gates: GateParams
    sources: dict  # source name -> its params section


_config: WorkerConfig | None = None


def init_worker(config: WorkerConfig) -> None:
    global _config
    _config = config
    if mp.current_process().name != "MainProcess":
        cv2.setNumThreads(1)  # parallelism comes from the pool; nested OpenCV threads only oversubscribe


def process_chunk(chunk: tuple[str, list[Item]]) -> tuple[str, list[Result]]:
    """One source's chunk: the source name travels with it so results need not repeat it."""
    name, items = chunk
    return name, [process(name, item, _config) for item in items]


def process(name: str, item: Item, cfg: WorkerConfig) -> Result:
    if item.reason:
        return Result(item.key, item.origin, reason=item.reason, detail=item.detail)
    try:
        sample = _load(name, item, cfg)
        check_ink(sample.image, cfg.gates.min_ink, cfg.gates.max_ink)
        record = to_record(sample)
        return Result(
            sample.key, sample.origin, record=record, tar=sample_bytes(record), digest=content_hash(record["png"]),
            phash=phash(sample.image), caption=sample.captions[0],
        )  # fmt: skip
    except Reject as reject:
        return Result(item.key, item.origin, reason=reject.reason, detail=reject.detail)
    except Exception as error:  # noqa: BLE001 -- a strange file must never stop the stage
        return Result(item.key, item.origin, reason="undecodable", detail=f"{type(error).__name__}: {error}"[:200])


def _load(name: str, item: Item, cfg: WorkerConfig) -> Sample:
    size, source = cfg.image_size, cfg.sources[name]
    sample = Sample(key=item.key, image=None, captions=item.captions, label=item.label, source=name,
                    origin=item.origin)  # fmt: skip
    if item.kind == "synthetic":
        sample = synthetic.make_sample(item.payload, source.seed, size, name)
        sample.image = finish(sample.image, cfg.normalize)
    elif item.kind == "raster":
        if item.caption_file:
            sample.captions = imagefolder.text_captions(item.caption_file)
        try:
            with open(item.payload, "rb") as f:
                data = f.read()
        except OSError as error:
            raise Reject("unreadable", str(error)) from None
        gray = decode(data, cfg.gates.min_side, cfg.gates.max_pixels, WORK_FACTOR * size)
        sample.image = normalize(gray, cfg.normalize, size)
    elif item.kind == "bitmap":  # Google's bitmaps are white ink on black
        gray = 255 - np.frombuffer(item.payload, np.uint8).reshape(28, 28)
        if source.layout:
            sample.image = finish(quickdraw.place_bitmap(gray, size, quickdraw.layout_rng(source, item.key)),
                                  cfg.normalize)  # fmt: skip
        else:
            sample.image = normalize(gray, cfg.normalize, size, photo=False)
    elif item.kind == "quickdraw_line":
        record, strokes = quickdraw.parse_line(item.payload, source)
        sample.label = record["word"].strip()
        sample.captions = [quickdraw.caption_for(source.caption_template, sample.label)]
        if isinstance(record.get("key_id"), (str, int)):
            sample.key = f"{name}-{slug(sample.label)}-{slug(str(record['key_id']))}"
        if source.layout:
            image = quickdraw.place_strokes(strokes, size, source, quickdraw.layout_rng(source, item.key))
        else:
            image = render_strokes(strokes, size, source.stroke_width, cfg.normalize.margin)
        sample.image = finish(image, cfg.normalize)
    else:
        raise ValueError(f"unknown item kind {item.kind!r}")
    if item.kind in ("bitmap", "quickdraw_line") and source.layout:  # captions name what was measured
        sample.attributes = measure(sample.image)
        if sample.attributes["size"] is None:
            raise Reject("blank", "no ink after placing")
        rng = quickdraw.layout_rng(source, "captions:" + item.key)
        sample.captions = layout_captions(sample.label, sample.attributes["size"], sample.attributes["position"], rng)
    return sample
