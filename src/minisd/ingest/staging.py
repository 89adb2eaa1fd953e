"""Outputs that appear whole or not at all: write into a sibling temp folder, rename on success.

Anything reading `data/shards` by hand during a run, or after a crash (even SIGKILL), never finds a
truncated shard under a final name: until the rename only `data/.shards.tmp-<pid>` exists, and the
next run removes such leftovers. (DVC deletes declared outputs before a run; this covers the rest.)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class Staged:
    """`with Staged(final) as s:` write into `s.path`; `s.commit()` moves it to `final`, else it vanishes."""

    def __init__(self, final: str | Path):
        self.final = Path(final)
        self.path = self.final.parent / f".{self.final.name}.tmp-{os.getpid()}"
        self.committed = False

    def __enter__(self) -> "Staged":
        self.final.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.final.parent.glob(f".{self.final.name}.tmp-*"):  # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        self.path.mkdir()
        return self

    def commit(self) -> None:
        if self.final.is_dir() and not self.final.is_symlink():
            shutil.rmtree(self.final)
        elif self.final.exists() or self.final.is_symlink():
            self.final.unlink()
        os.replace(self.path, self.final)
        self.committed = True

    def __exit__(self, *exc) -> None:
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)
