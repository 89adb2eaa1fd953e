"""Tar members as bytes, built in the pool workers so the main process only appends them.

Byte for byte what webdataset's `TarWriter` (Python's tarfile in stream mode, PAX format) writes
for the same record with `mtime=FIXED_MTIME`: moving the work changes no shard byte, while the
main process's share per sample drops from two tarfile headers built in Python to one write.
"""

from __future__ import annotations

import tarfile

from minisd.shards import FIXED_MTIME

BLOCK, RECORD = tarfile.BLOCKSIZE, tarfile.RECORDSIZE
OWNER, MODE = "bigdata", 0o444  # webdataset TarWriter's defaults for uname/gname and mode


def _tarfile_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uname, info.gname = size, FIXED_MTIME, MODE, OWNER, OWNER
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


_TEMPLATE = _tarfile_header("x", 0)  # every field but name, size and checksum is the same for all members
assert len(_TEMPLATE) == BLOCK


def header(name: str, size: int) -> bytes:
    """tarfile's header for this member, ~10x cheaper: a template with name, size and checksum patched.

    Only for what a plain ustar block holds (ASCII name of <= 100 bytes, size < 8 GiB); anything
    else (tarfile then adds a PAX extended header) is left to tarfile itself.
    """
    raw = name.encode("ascii", "ignore")
    if len(raw) != len(name) or len(raw) > 100 or size >= 8**11:
        return _tarfile_header(name, size)
    block = bytearray(_TEMPLATE)
    block[0:100] = raw.ljust(100, b"\0")
    block[124:136] = b"%011o\0" % size
    block[148:156] = b" " * 8  # the checksum counts its own field as spaces
    block[148:155] = b"%06o\0" % sum(block)
    return bytes(block)


def member(name: str, data: bytes) -> bytes:
    """One tar member: header block(s), the data, zero padding to a whole block."""
    return header(name, len(data)) + data + b"\0" * (-len(data) % BLOCK)


def sample_bytes(record: dict) -> bytes:
    """A shards.to_record() dict -> its members in TarWriter's order (extensions sorted)."""
    key = record["__key__"]
    return b"".join(member(f"{key}.{ext}", record[ext]) for ext in sorted(record) if ext != "__key__")


def end_of_archive(size: int) -> bytes:
    """Two zero blocks, then zeros up to a whole tar record, as tarfile.close() writes them."""
    return b"\0" * (2 * BLOCK + (-(size + 2 * BLOCK) % RECORD))
