"""Quality gates. Every rejection carries one of REASONS, so report.json and rejects.csv can count it."""

from __future__ import annotations

import hashlib
from array import array

import cv2
import numpy as np

from minisd.attributes import INK_THRESHOLD

REASONS = {
    "unreadable": "the file could not be read from disk",
    "not_an_image": "no known image signature (or an empty file)",
    "truncated": "image data ends before its end marker",
    "undecodable": "a known image format OpenCV could not decode, or any other per-item failure (see detail)",
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
    low = cv2.dct(small)[:16, :16].ravel()
    # median of the 255 AC terms = their middle element; partition is ~10x cheaper than np.median
    middle = np.partition(low[1:], 127)[127]
    return int.from_bytes(np.packbits(low > middle).tobytes(), "big")


class _MultiMap:
    """int key -> every sample index stored under it: open addressing in two flat `array`s.

    About 24 bytes per entry instead of ~170 for a dict of lists, so the dedup index of a
    million samples stays in the hundreds of MB, not gigabytes.
    """

    EMPTY = -1

    def __init__(self, bits: int = 10):
        self.bits, self.n = bits, 0
        self.keys = array("q", [self.EMPTY]) * (1 << bits)
        self.vals = array("l", [0]) * (1 << bits)

    def _slot(self, key: int) -> int:  # Fibonacci hashing: every key bit reaches the slot bits
        return ((key * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> (64 - self.bits)

    def add(self, key: int, value: int) -> None:
        if 2 * (self.n + 1) > len(self.keys):
            old = [(k, v) for k, v in zip(self.keys, self.vals) if k != self.EMPTY]
            self.__init__(self.bits + 1)
            for k, v in old:
                self._put(k, v)
        self._put(key, value)

    def _put(self, key: int, value: int) -> None:
        keys, mask, i = self.keys, len(self.keys) - 1, self._slot(key)
        while keys[i] != self.EMPTY:
            i = (i + 1) & mask
        keys[i], self.vals[i] = key, value
        self.n += 1

    def get(self, key: int) -> list[int]:
        keys, mask, i, found = self.keys, len(self.keys) - 1, self._slot(key), []
        while (k := keys[i]) != self.EMPTY:
            if k == key:
                found.append(self.vals[i])
            i = (i + 1) & mask
        return found


class Deduper:
    """Exact and near duplicates against everything accepted so far, in stream order.

    Near-duplicate search uses pigeonhole bands: two hashes within d bits agree exactly on at
    least one of d+1 disjoint bit bands, so a lookup touches a few candidates, not all N.
    State is O(N) but small (~0.5 KB per accepted sample at d=10); images are never kept.
    """

    def __init__(self, max_distance: int):
        self.max_distance = max_distance
        self.exact: set[int] = set()
        self.hashes = bytearray()  # HASH_BITS // 8 bytes per accepted sample
        bands = max_distance + 1 if 0 <= max_distance < HASH_BITS // 8 else 0
        self.bands = [(HASH_BITS * i // bands, HASH_BITS * (i + 1) // bands) for i in range(bands)]
        self.index = [_MultiMap() for _ in self.bands]

    @staticmethod
    def _band(h: int, lo: int, hi: int) -> int:
        """Bits lo..hi of h, folded into int64 for wide bands (a fold collision only adds a candidate)."""
        return ((h >> lo) & ((1 << (hi - lo)) - 1)) % (2**61 - 1)

    def _hash(self, i: int) -> int:
        n = HASH_BITS // 8
        return int.from_bytes(self.hashes[i * n : (i + 1) * n], "big")

    def _nearest(self, h: int) -> int | None:
        """Smallest Hamming distance from h to an accepted hash (None when nothing is close)."""
        if self.bands:
            seen: set[int] = set()
            for (lo, hi), index in zip(self.bands, self.index):
                seen.update(index.get(self._band(h, lo, hi)))
            return min(((h ^ self._hash(i)).bit_count() for i in seen), default=None)
        if not self.hashes:  # d too large to band: one vectorized scan over all hashes
            return None
        n = HASH_BITS // 8
        table = np.frombuffer(bytes(self.hashes), np.uint8).reshape(-1, n)
        query = np.frombuffer(h.to_bytes(n, "big"), np.uint8)
        return int(np.bitwise_count(table ^ query).sum(axis=1, dtype=np.int64).min())

    def check(self, digest: bytes, h: int) -> None:
        if int.from_bytes(digest[:8], "big") in self.exact:
            raise Reject("duplicate", "identical normalized image")
        if self.max_distance < 0:
            return
        distance = self._nearest(h)
        if distance is not None and distance <= self.max_distance:
            raise Reject("near_duplicate", f"phash distance {distance}")

    def add(self, digest: bytes, h: int) -> None:
        self.exact.add(int.from_bytes(digest[:8], "big"))
        if self.max_distance < 0:
            return
        i = len(self.hashes) // (HASH_BITS // 8)
        self.hashes += h.to_bytes(HASH_BITS // 8, "big")
        for (lo, hi), index in zip(self.bands, self.index):
            index.add(self._band(h, lo, hi), i)
