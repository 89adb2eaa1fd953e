"""What ingest tells a person: counts per source and reason, every reject, and a contact sheet."""

from __future__ import annotations

import csv
import json
import textwrap
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from minisd.imagegrid import tile
from minisd.ingest.items import Result
from minisd.shards import decode_png

TILE = 128
CAPTION_LINES = 2


class Report:
    """Counts, a streamed rejects.csv and a bounded preview buffer; memory stays flat."""

    def __init__(self, out_dir: Path, preview_tiles: int = 48):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self.sources: dict[str, dict] = {}
        self.preview_tiles = preview_tiles
        self.preview: dict[str, list] = {}
        self._csv_file = open(out_dir / "rejects.csv", "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(["source", "key", "origin", "reason", "detail"])

    def source(self, name: str) -> None:
        self.sources[name] = {"seen": 0, "accepted": 0, "rejected": 0, "reasons": Counter()}
        self.preview[name] = []

    def accept(self, name: str, result: Result) -> None:
        counts = self.sources[name]
        counts["seen"] += 1
        counts["accepted"] += 1
        if len(self.preview[name]) < self.preview_tiles:  # bounded: never more than one sheet per source
            self.preview[name].append((decode_png(result.record["png"]), result.caption))

    def reject(self, name: str, result: Result) -> None:
        counts = self.sources[name]
        counts["seen"] += 1
        counts["rejected"] += 1
        counts["reasons"][result.reason] += 1
        self._csv.writerow([name, result.key, result.origin, result.reason, result.detail])

    def summary(self, splits: dict) -> dict:
        sources = {
            name: {"seen": c["seen"], "accepted": c["accepted"], "rejected": c["rejected"],
                   "reasons": dict(sorted(c["reasons"].items()))}  # fmt: skip
            for name, c in self.sources.items()
        }
        total = {k: sum(s[k] for s in sources.values()) for k in ("seen", "accepted", "rejected")}
        return {"total": total, "sources": sources, "splits": splits}

    def close(self, splits: dict) -> dict:
        self._csv_file.close()
        summary = self.summary(splits)
        for name, s in summary["sources"].items():
            assert s["accepted"] + s["rejected"] == s["seen"], f"ingest lost items of source {name}"
        (self.out_dir / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
        cv2.imwrite(str(self.out_dir / "preview.png"), self.contact_sheet())
        return summary

    def contact_sheet(self, columns: int = 8) -> np.ndarray:
        """Samples dealt round-robin across sources, each with its first caption underneath."""
        queues = [list(v) for v in self.preview.values() if v]
        tiles = []
        while queues and len(tiles) < self.preview_tiles:
            for q in queues:
                if q and len(tiles) < self.preview_tiles:
                    tiles.append(q.pop(0))
            queues = [q for q in queues if q]
        if not tiles:
            return np.full((TILE, TILE), 255, np.uint8)
        return tile([_captioned(image, caption) for image, caption in tiles], columns)


def _captioned(image: np.ndarray, caption: str, line_h: int = 12) -> np.ndarray:
    """One contact-sheet cell: the image at TILE px, its caption's first lines on white below."""
    cell = np.full((TILE + CAPTION_LINES * line_h + 6, TILE), 255, np.uint8)
    cell[:TILE] = cv2.resize(image, (TILE, TILE), interpolation=cv2.INTER_AREA)
    text = caption.encode("ascii", "replace").decode()
    for j, line in enumerate(textwrap.wrap(text, 26)[:CAPTION_LINES]):
        cv2.putText(cell, line, (3, TILE + 10 + j * line_h), cv2.FONT_HERSHEY_SIMPLEX, 0.32, 0, 1, cv2.LINE_AA)
    return cell
