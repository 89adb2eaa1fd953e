"""Ordered, bounded parallel map: deterministic output order and memory that does not grow with input.

`Pool.imap` would read its whole input iterator ahead (every file's bytes in RAM); here at most
`window` chunks are in flight and results come back in submission order.

Workers come from a forkserver, not a plain fork: forking a process whose OpenCV (or torch) thread
pool has already run can deadlock the child. The server is a clean single-threaded process that
has imported `preload` once, so each worker still starts in milliseconds.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator


def _context(preload: list[str]):
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(preload)
        return ctx
    return mp.get_context("spawn")


def ordered_map(fn: Callable, chunks: Iterable, workers: int, initializer: Callable, initargs: tuple,
                window_per_worker: int = 4) -> Iterator:  # fmt: skip
    if workers == 0:
        initializer(*initargs)
        yield from map(fn, chunks)
        return
    ctx = _context(sorted({"minisd.ingest.process", fn.__module__}))  # heavy imports happen once, in the server
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=initializer, initargs=initargs) as executor:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(executor.submit(fn, chunk))
            if len(pending) >= workers * window_per_worker:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def chunked(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
