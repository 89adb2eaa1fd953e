"""Streaming shard writer: fixed shard size, a minimum shard count, deterministic placement.

Samples are dealt round-robin over groups of `min_shards` tars; a group holds at most
`min_shards * shard_size` samples, then the next group opens. So a split always has at least
`min_shards` shards (one per loader worker), none exceeds `shard_size`, only `min_shards` files are
open at once, and placement depends on nothing but the sample order.

Samples arrive as finished tar members (`tarbytes.sample_bytes`, built in the workers); a shard is
their concatenation plus tarfile's end-of-archive padding, identical to webdataset's TarWriter output.
"""

from __future__ import annotations

from pathlib import Path

from minisd.ingest.tarbytes import end_of_archive


class ShardedWriter:
    def __init__(self, out_dir: Path, split: str, shard_size: int, min_shards: int):
        self.out_dir, self.split = Path(out_dir), split
        self.shard_size, self.min_shards = shard_size, min_shards
        self.count = 0
        self.open: dict[int, list] = {}  # index -> [stream, bytes written]
        self.paths: list[Path] = []

    def _stream(self, index: int) -> list:
        if index not in self.open:
            path = self.out_dir / f"{self.split}-{index:06d}.tar"
            self.open[index] = [open(path, "wb"), 0]
            self.paths.append(path)
        return self.open[index]

    def _close(self, keep_from: int) -> None:
        for index in [i for i in self.open if i < keep_from]:
            stream, size = self.open.pop(index)
            stream.write(end_of_archive(size))
            stream.close()

    def write(self, members: bytes) -> None:
        group, slot = divmod(self.count, self.min_shards * self.shard_size)
        first = group * self.min_shards
        self._close(first)
        entry = self._stream(first + slot % self.min_shards)
        entry[0].write(members)
        entry[1] += len(members)
        self.count += 1

    def close(self) -> list[Path]:
        for index in range(self.min_shards):  # a tiny split still gets min_shards (maybe empty) tars
            if self.out_dir / f"{self.split}-{index:06d}.tar" not in self.paths:
                self._stream(index)
        self._close(float("inf"))
        return sorted(self.paths)
