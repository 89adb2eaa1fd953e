"""Quality gates. Every rejection carries one of REASONS, so report.json and rejects.csv can count it."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from minisd.attributes import INK_THRESHOLD

REASONS = {
    "unreadable": "the file could not be read from disk",
    "not_an_image": "no known image signature (or an empty file)",
    "truncated": "image data ends before its end marker",
    "undecodable": "a known image format that OpenCV could not decode",
    "too_small": "shorter side under ingest.gates.min_side",
    "too_large": "more pixels than ingest.gates.max_pixels (checked before decoding)",
    "blank": "ink fraction under ingest.gates.min_ink",
    "too_much_ink": "ink fraction over ingest.gates.max_ink",
    "missing_caption": "no caption found for the image (metadata row, texts/<stem>.txt or <stem>.txt)",
    "empty_caption": "the caption is empty or whitespace",
    "caption_not_utf8": "the caption text is not valid UTF-8",
    "missing_file": "a metadata row names a file that does not exist",
    "duplicate": "same normalized pixels as an earlier sample",
    "near_duplicate": "perceptual hash within ingest.gates.near_duplicate_distance bits of an earlier sample",
    "bad_json": "a Quick Draw line that is not a JSON object",
    "no_strokes": "a Quick Draw drawing without any stroke",
    "malformed_strokes": "a Quick Draw stroke that is not [[x...], [y...](, [t...])] of equal lengths",
    "coords_out_of_range": "Quick Draw coordinates outside 0..255 (simplified) or not finite (raw)",
    "not_recognized": "Quick Draw drawing with recognized=false (ingest.sources[i].recognized_only)",
    "class_cap": "over ingest.sources[i].max_per_class drawings of this class",
}


class Reject(Exception):
    """Raised anywhere in per-item processing; caught once and recorded, never fatal."""

    def __init__(self, reason: str, detail: str = ""):
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def check_ink(image: np.ndarray, min_ink: float, max_ink: float) -> float:
    fraction = float(np.count_nonzero(image < INK_THRESHOLD)) / image.size
    if fraction < min_ink:
        raise Reject("blank", f"ink {fraction:.4f} < {min_ink}")
    if fraction > max_ink:
        raise Reject("too_much_ink", f"ink {fraction:.3f} > {max_ink}")
    return fraction


def content_hash(image: np.ndarray) -> bytes:
    return hashlib.sha256(image.tobytes() + str(image.shape).encode()).digest()[:16]


HASH_BITS = 256


def phash(image: np.ndarray) -> int:
    """256-bit DCT perceptual hash (OpenCV's img_hash is not in the headless wheel).

    The classic 64-bit pHash (8x8 of a 32x32 DCT) is too coarse for sparse line art: distinct
    small doodles in the same spot collide. 16x16 of a 64x64 DCT keeps distinct doodles >= ~34 bits
    apart while a re-encoded, rescaled, noisy copy stays within ~8 bits.
    """
    small = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:16, :16].flatten()
    bits = low > np.median(low[1:])
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


class Deduper:
    """Exact and near duplicates against everything accepted so far, in stream order.

    Near-duplicate search uses pigeonhole buckets: two hashes within d bits agree exactly on
    at least one of d+1 disjoint bit bands, so each lookup touches a few candidates, not all N.
    """

    def __init__(self, max_distance: int):
        self.max_distance = max_distance
        self.exact: set[bytes] = set()
        bands = max_distance + 1 if 0 <= max_distance < HASH_BITS // 8 else 0
        self.bands = [(HASH_BITS * i // bands, HASH_BITS * (i + 1) // bands) for i in range(bands)]
        self.buckets: list[dict[int, list[int]]] = [{} for _ in self.bands]
        self.all: list[int] = []

    def _band(self, h: int, lo: int, hi: int) -> int:
        return (h >> lo) & ((1 << (hi - lo)) - 1)

    def check(self, digest: bytes, h: int) -> None:
        if digest in self.exact:
            raise Reject("duplicate", "identical normalized image")
        if self.max_distance < 0:
            return
        if self.bands:
            candidates = {c for (lo, hi), bucket in zip(self.bands, self.buckets)
                          for c in bucket.get(self._band(h, lo, hi), ())}  # fmt: skip
        else:
            candidates = self.all
        for other in candidates:
            distance = (h ^ other).bit_count()
            if distance <= self.max_distance:
                raise Reject("near_duplicate", f"phash distance {distance}")

    def add(self, digest: bytes, h: int) -> None:
        self.exact.add(digest)
        if self.max_distance < 0:
            return
        if self.bands:
            for (lo, hi), bucket in zip(self.bands, self.buckets):
                bucket.setdefault(self._band(h, lo, hi), []).append(h)
        else:
            self.all.append(h)
