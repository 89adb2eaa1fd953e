"""A CLIP-style BPE tokenizer trained from our own captions, so the offline default downloads nothing.

It is trained with the `tokenizers` library using exactly the normalizer and pre-tokenizer that
`CLIPTokenizer` applies (lower-case, CLIP's split regex, byte-level, `</w>` word ends), then
wrapped as a plain `CLIPTokenizer`: the saved folder loads with `CLIPTokenizer.from_pretrained`
and in a stock `StableDiffusionPipeline`, like SD's own tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import CLIPTokenizer

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
WORD_END = "</w>"
CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
BASE_SIZE = 2 * 256 + 2  # every byte, every byte ending a word, and the two specials


def _byte_alphabet() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for raw bytes, in a fixed order."""
    return sorted(pre_tokenizers.ByteLevel.alphabet())


def _trainer_tokenizer() -> Tokenizer:
    """Same text pipeline as `CLIPTokenizer`, so trained merges match what it will see at run time."""
    tok = Tokenizer(models.BPE(unk_token=EOS, continuing_subword_prefix="", end_of_word_suffix=WORD_END))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    return tok


def train_merges(captions: Iterable[str], vocab_size: int) -> list[tuple[str, str]]:
    """BPE merges learned from `captions`, at most `vocab_size - BASE_SIZE` of them, in learned order."""
    budget = vocab_size - BASE_SIZE
    if budget <= 0:
        return []
    tok = _trainer_tokenizer()
    # The trainer numbers symbols in hash-map order and breaks ties between equally frequent pairs
    # by those numbers, so merges would differ from run to run. Registering every base symbol up
    # front, in a fixed order, fixes the numbering and makes the merges deterministic.
    alphabet = _byte_alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 2,
        min_frequency=2,
        special_tokens=alphabet + [c + WORD_END for c in alphabet],
        end_of_word_suffix=WORD_END,
        show_progress=False,
    )
    tok.train_from_iterator(sorted(captions), trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges][:budget]


def vocab_from_merges(merges: list[tuple[str, str]]) -> dict[str, int]:
    """CLIP's vocabulary layout: bytes, bytes + `</w>`, one token per merge, then the specials."""
    alphabet = _byte_alphabet()
    tokens = alphabet + [c + WORD_END for c in alphabet]
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            tokens.append(a + b)
    tokens += [BOS, EOS]
    return {t: i for i, t in enumerate(tokens)}


def train_clip_tokenizer(captions: Iterable[str], vocab_size: int, max_length: int) -> CLIPTokenizer:
    """Deterministic: the same captions (in any order) give byte-identical saved files."""
    merges = train_merges(captions, vocab_size)
    vocab = vocab_from_merges(merges)
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=EOS,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=EOS,  # as in SD 1.x: padding repeats the end token
        model_max_length=max_length,
    )


def save_tokenizer(tokenizer: CLIPTokenizer, folder) -> None:
    """`save_pretrained` plus CLIP's classic `vocab.json` + `merges.txt`.

    transformers v5 writes only `tokenizer.json`; the two classic files let older transformers
    (and any CLIP BPE reader) load the folder too. All files are written deterministically.
    """
    folder = Path(folder)
    tokenizer.save_pretrained(folder)
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    vocab = dict(sorted(model["vocab"].items(), key=lambda kv: kv[1]))
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges), encoding="utf-8")
