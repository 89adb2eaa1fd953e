"""Shards appear whole or not at all, and the workers' tar bytes equal webdataset's own writer."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import webdataset as wds
from _ingest import params

from minisd.ingest import run_ingest
from minisd.ingest.staging import Staged
from minisd.ingest.tarbytes import end_of_archive, sample_bytes
from minisd.shards import FIXED_MTIME


def test_tar_bytes_equal_webdataset_tarwriter():
    """Plain keys take the fast header path; a 120-character key needs tarfile's PAX header."""
    keys = ["a", "synthetic-000001", "x" * 96, "y" * 120, "q-cat-5152802093400064"]
    records = [{"__key__": key, "png": bytes(range(256)) * (i + 1), "json": b'{"a": 1}' * i} for i, key in enumerate(keys)]
    stream = io.BytesIO()
    writer = wds.TarWriter(stream, mtime=FIXED_MTIME)
    for record in records:
        writer.write(dict(record))
    writer.close()
    ours = b"".join(sample_bytes(r) for r in records)
    assert stream.getvalue() == ours + end_of_archive(len(ours))
    empty = io.BytesIO()
    wds.TarWriter(empty, mtime=FIXED_MTIME).close()
    assert empty.getvalue() == end_of_archive(0)


def test_staged_replaces_on_commit_and_vanishes_on_error(tmp_path):
    final = tmp_path / "shards"
    final.mkdir()
    (final / "old.tar").write_bytes(b"old")
    (tmp_path / ".shards.tmp-999999").mkdir()  # left behind by a killed run
    with Staged(final) as staged:
        assert not (tmp_path / ".shards.tmp-999999").exists()
        (staged.path / "train-000000.tar").write_bytes(b"new")
        assert (final / "old.tar").exists()  # the old output stays until the new one is complete
        staged.commit()
    assert sorted(p.name for p in final.iterdir()) == ["train-000000.tar"]
    with pytest.raises(RuntimeError), Staged(final) as staged:
        (staged.path / "half.tar").write_bytes(b"half")
        raise RuntimeError("crash")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]


KILLED = textwrap.dedent("""
    import sys
    from minisd.config import IngestParams
    from minisd.ingest import run_ingest
    params = IngestParams.model_validate({"sources": [{"kind": "synthetic", "count": 20000}], "workers": 0})
    run_ingest(params, sys.argv[1] + "/shards", sys.argv[1] + "/ingest")
""")


def test_sigkill_mid_write_leaves_no_shard_under_a_final_name(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    deadline = time.monotonic() + 120  # imports take seconds on a busy machine; the ingest itself ~20 s
    try:
        while not any(p.stat().st_size > 8192 for p in tmp_path.glob(".shards.tmp-*/*.tar")):
            assert proc.poll() is None, "ingest ended before it was killed"
            assert time.monotonic() < deadline, "no shard bytes written in time"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "shards").exists(), "a half-written shard under its final name"
    assert list(tmp_path.glob(".shards.tmp-*/train-000000.tar"))  # it was killed mid-write, there
    run_ingest(params([{"kind": "synthetic", "count": 8}]), tmp_path / "shards", tmp_path / "ingest")
    assert not list(tmp_path.glob(".shards.tmp-*")), "the next run removes what a killed run left"
    assert sorted(p.name for p in (tmp_path / "shards").iterdir())[0] == "train-000000.tar"
