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


def content_hash(png: bytes) -> bytes:
    """Identity of the normalized pixels: the shard's PNG is a deterministic lossless encoding of
    them, and a fifth the bytes of the raw image to hash."""
    return hashlib.sha256(png).digest()[:16]


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
    """int64 key -> every value stored under it: open addressing in two flat numpy arrays, probed for
    a whole batch of keys at once (one numpy pass per probe step, not one Python loop per key).

    12 bytes per slot, at most half of the slots used: 24-48 bytes per entry instead of ~170 for a
    dict of lists, so the dedup index of a million samples stays in the hundreds of MB. Growing
    doubles the table; while the entries move, old and new coexist (1.5x the new table at the peak).
    """

    EMPTY = -1
    REHASH = 1 << 16  # entries moved per pass when the table grows: bounds the temporaries

    def __init__(self, bits: int = 10):
        self.bits, self.n = bits, 0
        self.keys = np.full(1 << bits, self.EMPTY, np.int64)
        self.vals = np.zeros(1 << bits, np.int32)  # sample numbers

    def _slots(self, keys: np.ndarray) -> np.ndarray:  # Fibonacci hashing: every key bit reaches the slot bits
        return ((keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - self.bits)).astype(np.int64)

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        if 2 * (self.n + len(keys)) > len(self.keys):
            old_keys, old_vals = self.keys, self.vals
            bits = self.bits + 1
            while 2 * (self.n + len(keys)) > (1 << bits):
                bits += 1
            self.__init__(bits)
            for start in range(0, len(old_keys), self.REHASH):
                part = slice(start, start + self.REHASH)
                used = old_keys[part] != self.EMPTY
                self._put(old_keys[part][used], old_vals[part][used])
            del old_keys, old_vals
        self._put(keys, values)

    def _put(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Linear probing for all keys at once; when several claim one free slot, the first in order wins."""
        mask, slots, pending = len(self.keys) - 1, self._slots(keys), np.arange(len(keys))
        while pending.size:
            free = np.flatnonzero(self.keys[slots[pending]] == self.EMPTY)
            _, first = np.unique(slots[pending[free]], return_index=True)
            winners = pending[free[first]]
            self.keys[slots[winners]], self.vals[slots[winners]] = keys[winners], values[winners]
            waiting = np.ones(len(pending), bool)
            waiting[free[first]] = False
            pending = pending[waiting]
            slots[pending] = (slots[pending] + 1) & mask
        self.n += len(keys)

    def get(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(i, value) for every stored value under keys[i]."""
        mask, slots = len(self.keys) - 1, self._slots(keys)
        active, found_at, found = np.arange(len(keys)), [], []
        while active.size:
            stored = self.keys[slots[active]]
            hit = active[stored == keys[active]]
            found_at.append(hit)
            found.append(self.vals[slots[hit]])
            active = active[stored != self.EMPTY]
            slots[active] = (slots[active] + 1) & mask
        return np.concatenate(found_at), np.concatenate(found)


def _words(hashes: list[int]) -> np.ndarray:
    """256-bit ints -> (N, 4) uint64 words, so Hamming distances are xor + popcount over 4 columns."""
    n = HASH_BITS // 8
    return np.frombuffer(b"".join(h.to_bytes(n, "big") for h in hashes), ">u8").astype(np.uint64).reshape(-1, 4)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between rows of (..., 4) word arrays (broadcast)."""
    return np.bitwise_count(a ^ b).sum(axis=-1, dtype=np.int64)


class Deduper:
    """Exact and near duplicates against everything accepted so far, in stream order.

    Near-duplicate search uses pigeonhole bands: two hashes within d bits agree exactly on at
    least one of d+1 disjoint bit bands, so a lookup touches a few candidates, not all N.
    Work is batched per chunk of results (the main process's share of every sample): the band
    lookups and the distances run as numpy passes, and only the in-order verdicts loop in Python.
    State is O(N) but small (0.3-0.6 KB per accepted sample at d=10); images are never kept.
    """

    def __init__(self, max_distance: int):
        self.max_distance = max_distance
        self.exact: set[int] = set()
        self.hashes = np.zeros((0, 4), np.uint64)  # accepted hashes as words; rows [0, count) are used
        self.count = 0
        bands = max_distance + 1 if 0 <= max_distance < HASH_BITS // 8 else 0
        self.bands = [(HASH_BITS * i // bands, HASH_BITS * (i + 1) // bands) for i in range(bands)]
        # one table for all bands: a chunk's lookups are one pass of numpy operations, not one per band
        self.index = _MultiMap()  # (band value, band number) -> accepted sample number

    def _band_keys(self, h: int) -> list[int]:
        """One int64 key per band: its bits of h (wide bands folded) with the band number in the low
        6 bits. A fold collision only adds a candidate, whose true distance is then computed."""
        return [(((h >> lo) & ((1 << (hi - lo)) - 1)) % (2**57 - 1)) << 6 | band
                for band, (lo, hi) in enumerate(self.bands)]  # fmt: skip

    def _nearest_accepted(self, band_keys: np.ndarray, words: np.ndarray) -> np.ndarray:
        """Per hash, the smallest distance to an accepted hash that shares a band with it (every hash
        within max_distance does); HASH_BITS + 1 where none does."""
        best = np.full(len(words), HASH_BITS + 1, np.int64)
        if not self.count:
            return best
        if not self.bands:  # d too large to band: a scan over all accepted hashes, one query at a time
            for i, query in enumerate(words):
                best[i] = _distances(self.hashes[: self.count], query).min()
            return best
        at, candidates = self.index.get(band_keys.ravel())
        query = at // len(self.bands)
        np.minimum.at(best, query, _distances(words[query], self.hashes[candidates]))
        return best

    def screen(self, digests: list[bytes], hashes: list[int]) -> list[Reject | None]:
        """Verdicts for a batch (a chunk) in order: each item against everything accepted before it,
        earlier items of the batch included; the accepted ones are added. Same verdicts as one at a time."""
        exact = [int.from_bytes(d[:8], "big") for d in digests]
        near = self.max_distance >= 0 and len(exact) > 0
        if near:
            words = _words(hashes)
            band_keys = np.array([self._band_keys(h) for h in hashes], np.int64).reshape(len(hashes), -1)
            best = self._nearest_accepted(band_keys, words)
            close: dict[int, list[tuple[int, int]]] = {}  # item -> (earlier item, distance) within max_distance
            within = _distances(words[:, None], words[None])
            for i, j in zip(*np.nonzero(np.tril(within <= self.max_distance, k=-1))):
                close.setdefault(int(i), []).append((int(j), int(within[i, j])))
        verdicts, accepted = [], []
        for i, key in enumerate(exact):
            if key in self.exact:
                verdicts.append(Reject("duplicate", "identical normalized image"))
                continue
            if near:
                distance = min([int(best[i])] + [d for j, d in close.get(i, ()) if j in accepted])
                if distance <= self.max_distance:
                    verdicts.append(Reject("near_duplicate", f"phash distance {distance}"))
                    continue
            self.exact.add(key)
            accepted.append(i)
            verdicts.append(None)
        if near and accepted:
            self._add(words[accepted], band_keys[accepted])
        return verdicts

    def _add(self, words: np.ndarray, band_keys: np.ndarray) -> None:
        first, self.count = self.count, self.count + len(words)
        if self.count > len(self.hashes):
            grown = np.zeros((max(2 * len(self.hashes), self.count, 1024), 4), np.uint64)
            grown[:first] = self.hashes[:first]
            self.hashes = grown
        self.hashes[first : self.count] = words
        if self.bands:
            numbers = np.arange(first, self.count, dtype=np.int32)
            self.index.add(band_keys.ravel(), np.repeat(numbers, len(self.bands)))
