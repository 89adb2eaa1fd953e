"""Reader of `data/cache/text/`: one row of per-token hidden states per distinct caption.

Layout (written by `minisd.caches.embed`):
  embeddings.safetensors  "embeddings" (M, max_length, hidden) in the cache dtype
  index.json              captions in row order, sample key -> rows per split, the empty prompt's
                          row, the eval prompts' rows, and the hashes of the tokenizer and text
                          encoder folders that produced the rows
  prompts.json            the eval prompts (same list as `TextCache.prompts`)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from minisd.caches.storage import CacheError, open_mmap, read_index

TEXT_FORMAT = "minisd.text-cache/1"
EMBEDDINGS = "embeddings.safetensors"
INDEX = "index.json"
PROMPTS = "prompts.json"


class TextCache:
    def __init__(self, folder: Path, index: dict, embeddings: torch.Tensor, prompts: list[dict]):
        self.folder = folder
        self.embeddings = embeddings  # memory-mapped; index it with a row tensor to copy a batch out
        self.captions: list[str] = index["captions"]
        self.samples: dict[str, dict[str, list[int]]] = index["samples"]
        self.empty_row: int = index["empty_row"]
        self.prompt_rows: list[int] = index["prompt_rows"]
        self.prompts = prompts
        self.encoder_hash: str = index["encoder_hash"]
        self.tokenizer_hash: str = index["tokenizer_hash"]
        self.hidden_size: int = index["hidden_size"]
        self.max_length: int = index["max_length"]
        self.dtype: str = index["dtype"]
        self._rows = {text: row for row, text in enumerate(self.captions)}
        self._by_key = {key: rows for split in self.samples.values() for key, rows in split.items()}

    @classmethod
    def open(cls, folder: str | Path) -> "TextCache":
        folder = Path(folder)
        index = read_index(folder, INDEX, TEXT_FORMAT, "text", "embed_text")
        tensors, _ = open_mmap(folder / EMBEDDINGS)
        embeddings = tensors.get("embeddings")
        expected = (len(index["captions"]), index["max_length"], index["hidden_size"])
        if embeddings is None or tuple(embeddings.shape) != expected:
            got = None if embeddings is None else tuple(embeddings.shape)
            raise CacheError(f"{folder / EMBEDDINGS}: embeddings shape {got}, index says {expected}; rerun embed_text")
        prompts = json.loads((folder / PROMPTS).read_text())
        return cls(folder, index, embeddings, prompts)

    def __len__(self) -> int:
        return len(self.captions)

    def keys(self, split: str) -> list[str]:
        if split not in self.samples:
            raise CacheError(f"{self.folder}: no split {split!r} (has {sorted(self.samples)})")
        return list(self.samples[split])

    def rows_for(self, key: str) -> list[int]:
        """Rows of all of a sample's captions, in the sample's caption order."""
        try:
            return self._by_key[key]
        except KeyError:
            raise KeyError(f"sample {key!r} is not in the text cache {self.folder}; rerun embed_text") from None

    def row_of(self, text: str) -> int:
        try:
            return self._rows[text]
        except KeyError:
            raise KeyError(f"caption {text!r} is not in the text cache {self.folder}; rerun embed_text") from None

    def check(self, encoder_hash: str | None = None, tokenizer_hash: str | None = None) -> None:
        """Fail if the rows were made by another text encoder or tokenizer than the caller's."""
        for what, mine, theirs in (
            ("text encoder", self.encoder_hash, encoder_hash),
            ("tokenizer", self.tokenizer_hash, tokenizer_hash),
        ):
            if theirs is not None and theirs != mine:
                raise CacheError(
                    f"{self.folder}: text cache was made by a different {what} (cache has {mine[:16]}..., "
                    f"the {what} in use has {theirs[:16]}...); rerun `dvc repro embed_text`"
                )

    def check_models(self, text_encoder_dir: str | Path | None = None, tokenizer_dir: str | Path | None = None):
        """`check` against saved model folders (hashed like `minisd.components.weights_hash`)."""
        from minisd.components import weights_hash

        self.check(
            encoder_hash=weights_hash(text_encoder_dir) if text_encoder_dir else None,
            tokenizer_hash=weights_hash(tokenizer_dir) if tokenizer_dir else None,
        )
