"""The ingest stage end to end (`run_ingest`): readers -> process pool (ordered) -> dedup -> shards + report.

Readers and the writer run in the main process in a fixed order, workers do the pixels, so the
output is byte-identical for any worker count and memory is bounded by the in-flight window.
Shards are written into a temporary sibling folder and renamed into place only on success.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from minisd.params.ingest import IngestParams, SyntheticSource
from minisd.ingest.gates import Deduper
from minisd.ingest.imagefolder import read_imagefolder
from minisd.ingest.items import Item, slug
from minisd.ingest.pool import chunked, ordered_map
from minisd.ingest.process import WorkerConfig, init_worker, process_chunk
from minisd.ingest.quickdraw import check_template, read_quickdraw
from minisd.ingest.raw import RAW, missing_path_hint, resolve_sources
from minisd.ingest.report import Report
from minisd.ingest.staging import Staged
from minisd.ingest.tarbytes import sample_bytes
from minisd.ingest.writer import ShardedWriter
from minisd.shards import SPLITS, split_of
from minisd.stage import StageError

log = logging.getLogger("minisd.ingest")
CHUNK = 64  # items per pool task: per-task overhead (futures, pickling, wake-ups) is paid once per chunk


def source_names(params: IngestParams, given: IngestParams | None = None, raw_dir: str | Path = RAW) -> list[str]:
    """Each source's name (key prefix and report entry); checks paths and options up front.

    `params` has resolved paths; `given` the paths as written in params.yaml, for the messages.
    """
    names: dict[str, int] = {}
    for i, source in enumerate(params.sources):
        param = f"ingest.sources[{i}]"
        if source.kind != "synthetic":
            written = (given or params).sources[i].path
            shown = written if written == source.path else f"{written} ({source.path})"
            if not Path(source.path).exists():
                raise StageError(f"{param}.path: {shown} does not exist{missing_path_hint(written, raw_dir)}")
            if source.kind == "imagefolder" and not Path(source.path).is_dir():
                raise StageError(f"{param}.path: {shown} is not a folder")
        if source.kind == "quickdraw":
            check_template(source.caption_template, param)
        name = source.name or ("synthetic" if source.kind == "synthetic" else _default_name(Path(source.path)))
        if name in names:
            raise StageError(f"{param}.name: {name!r} is also the name of sources[{names[name]}]; set a distinct name")
        names[name] = i
    return list(names)


def _default_name(path: Path) -> str:
    path = path.resolve()
    return slug(path.stem if path.is_file() else path.name)


def read_source(source, name: str, param: str) -> Iterator[Item]:
    if isinstance(source, SyntheticSource):
        return (Item(key=f"{name}-{i:06d}", origin=f"synthetic:{source.seed}:{i}", kind="synthetic", payload=i)
                for i in range(source.count))  # fmt: skip
    if source.kind == "imagefolder":
        return read_imagefolder(source, name, param)
    return read_quickdraw(source, name, param)


def _chunks(names: list[str], readers: list[Iterator[Item]]) -> Iterator[tuple[str, list[Item]]]:
    for name, reader in zip(names, readers):
        for chunk in chunked(reader, CHUNK):
            yield name, chunk


def run_ingest(params: IngestParams, shards_dir: str | Path, out_dir: str | Path, raw_dir: str | Path = RAW) -> dict:
    """Ingest every source into `shards_dir`; report.json, rejects.csv, preview.png into `out_dir`.

    Relative source paths are read under `raw_dir` (data/raw/, a dependency of the ingest stage).
    """
    given, params = params, resolve_sources(params, raw_dir)
    names = source_names(params, given, raw_dir)
    with Staged(shards_dir) as staged:
        summary = _ingest(params, names, staged.path, Path(out_dir))
        staged.commit()
    return summary


def _ingest(params: IngestParams, names: list[str], shards_dir: Path, out_dir: Path) -> dict:
    readers = [read_source(s, n, f"ingest.sources[{i}]") for i, (n, s) in enumerate(zip(names, params.sources))]
    writers = {s: ShardedWriter(shards_dir, s, params.shard_size, params.min_shards) for s in SPLITS}
    report = Report(out_dir)
    for name in names:
        report.source(name)
    dedup = Deduper(params.gates.near_duplicate_distance)
    keys: set[str] = set()
    config = WorkerConfig(params.image_size, params.normalize, params.gates, dict(zip(names, params.sources)))
    total = sum(s.count for s in params.sources) if all(s.kind == "synthetic" for s in params.sources) else None
    results = ordered_map(process_chunk, _chunks(names, readers), params.workers, init_worker, (config,))
    with tqdm(total=total, desc="ingest", unit="img", smoothing=0.1) as bar:
        for name, chunk in results:
            _screen_duplicates(chunk, dedup)
            for result in chunk:
                _route(result, name, keys, writers, params.val_fraction, report)
            bar.update(len(chunk))
    splits = {s: {"samples": w.count, "shards": len(w.close())} for s, w in writers.items()}
    summary = report.close(splits)
    log.info("ingest: %s", summary["total"])
    if summary["total"]["accepted"] == 0:
        raise StageError(
            f"ingest accepted 0 of {summary['total']['seen']} items; reasons per source in "
            f"{out_dir / 'report.json'}, every reject in {out_dir / 'rejects.csv'}"
        )
    return summary


def _screen_duplicates(chunk: list, dedup: Deduper) -> None:
    """The main-process gate that needs the whole stream: duplicates of anything accepted before."""
    fresh = [result for result in chunk if result.reason is None]
    for result, reject in zip(fresh, dedup.screen([r.digest for r in fresh], [r.phash for r in fresh])):
        if reject is not None:
            result.reason, result.detail = reject.reason, reject.detail


def _route(result, name, keys: set, writers: dict, val_fraction: float, report: Report) -> None:
    """A screened result into the report, and an accepted one into its shard."""
    if result.reason is not None:
        report.reject(name, result)
        return
    key, n = result.key, 1
    while key in keys:  # two originals whose slugs collide: keep both, deterministically
        n += 1
        key = f"{result.key}-{n}"
    keys.add(key)
    if key != result.key:
        result.key = result.record["__key__"] = key
        result.tar = sample_bytes(result.record)
    writers[split_of(key, val_fraction)].write(result.tar)
    report.accept(name, result)
