"""The embed_text stage: every distinct caption (plus "" and the eval prompts) encoded exactly once
by the frozen text encoder that train_clip saved, into the text cache (read by `text_cache.TextCache`).

Rows are in a fixed order ("" first, then the other texts sorted), cut into fixed batches, and the
batches split contiguously between processes; each process streams its rows to a part file and the
main process concatenates the parts. So the bytes do not depend on shard layout or process count.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import CLIPTextModel, CLIPTokenizer

from minisd import paths
from minisd.caches.parallel import batches, fresh_dir, make_inference_accelerator, read_all_meta
from minisd.caches.storage import cache_dtype, open_mmap, write_stream
from minisd.caches.text_cache import EMBEDDINGS, INDEX, PROMPTS, TEXT_FORMAT
from minisd.components import weights_hash
from minisd.params.caches import CacheParams, PromptParams
from minisd.eval_prompts import choose_prompts
from minisd.shards import Sample

log = logging.getLogger("minisd.caches")
BF16_MIN_HIDDEN = 512  # CPU bf16 autocast: within noise of fp32 at hidden 128, 1.5-2x faster from 512 (measured)


def caption_table(meta: dict[str, list[Sample]], prompts: list[dict]) -> tuple[list[str], dict]:
    """(texts in row order, split -> key -> rows); a sample keeps all its captions, in its own order."""
    distinct = {c for samples in meta.values() for s in samples for c in s.captions}
    distinct |= {p["text"] for p in prompts}
    distinct.discard("")
    texts = ["", *sorted(distinct)]
    row = {text: i for i, text in enumerate(texts)}
    table = {
        split: {s.key: [row[c] for c in dict.fromkeys(s.captions)] for s in samples} for split, samples in meta.items()
    }
    uncaptioned = sum(1 for split in table.values() for rows in split.values() if not rows)
    if uncaptioned:
        log.warning("embed_text: %d samples have no caption (they train only as unconditional)", uncaptioned)
    return texts, table


def encode_texts(tokenizer, encoder, texts: list[str], accelerator: Accelerator) -> torch.Tensor:
    """Per-token hidden states (n, max_length, hidden), float32 on CPU.

    Tokenized and encoded exactly as `StableDiffusionPipeline.encode_prompt` does (pad to
    max_length, truncate, no attention mask, last hidden state), so training sees what sampling sees.
    """
    ids = tokenizer(
        texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
    with torch.inference_mode(), accelerator.autocast():
        hidden = encoder(ids.to(accelerator.device))[0]
    return hidden.float().cpu()


def _count_truncated(tokenizer, texts: list[str]) -> int:
    limit = tokenizer.model_max_length
    lengths = [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]
    long = [t for t, n in zip(texts, lengths) if n > limit]
    if long:
        log.warning("embed_text: %d captions exceed %d tokens and are truncated, e.g. %r", len(long), limit, long[0])
    return len(long)


def write_text_cache(
    out_dir: str | Path,
    accelerator: Accelerator,
    tokenizer,
    encoder,
    meta: dict[str, list[Sample]],
    prompts: list[dict],
    *,
    batch_size: int,
    dtype: str,
    encoder_hash: str,
    tokenizer_hash: str,
) -> None:
    """Encode and write the cache into the (existing, empty) `out_dir`; collective: every process calls it."""
    out_dir = Path(out_dir)
    torch_dtype = cache_dtype(dtype)
    texts, table = caption_table(meta, prompts)
    length, hidden = tokenizer.model_max_length, encoder.config.hidden_size
    encoder.to(accelerator.device).eval()

    with accelerator.split_between_processes(batches(len(texts), batch_size)) as mine:
        mine = list(mine)
    parts = out_dir / ".parts"
    if accelerator.is_main_process:
        parts.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    rows = sum(len(b) for b in mine)
    bar = tqdm(total=rows, unit="caption", desc="embed_text", disable=not accelerator.is_local_main_process)

    def blocks():
        for batch in mine:
            yield encode_texts(tokenizer, encoder, [texts[i] for i in batch], accelerator).to(torch_dtype)
            bar.update(len(batch))

    part = parts / f"part-{accelerator.process_index:05d}.safetensors"
    write_stream(part, [("embeddings", torch_dtype, (rows, length, hidden))], blocks())
    bar.close()
    accelerator.wait_for_everyone()

    if accelerator.is_main_process:
        files = [parts / f"part-{i:05d}.safetensors" for i in range(accelerator.num_processes)]
        write_stream(
            out_dir / EMBEDDINGS,
            [("embeddings", torch_dtype, (len(texts), length, hidden))],
            (open_mmap(f)[0]["embeddings"] for f in files),
        )
        shutil.rmtree(parts)
        row = {text: i for i, text in enumerate(texts)}
        index = {
            "format": TEXT_FORMAT,
            "dtype": dtype,
            "max_length": length,
            "hidden_size": hidden,
            "encoder_hash": encoder_hash,
            "tokenizer_hash": tokenizer_hash,
            "truncated": _count_truncated(tokenizer, texts),
            "empty_row": row[""],
            "prompt_rows": [row[p["text"]] for p in prompts],
            "captions": texts,
            "samples": table,
        }
        (out_dir / INDEX).write_text(json.dumps(index, ensure_ascii=False) + "\n", encoding="utf-8")
        (out_dir / PROMPTS).write_text(json.dumps(prompts, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        samples = sum(map(len, table.values()))
        log.info("embed_text: %d distinct texts for %d samples -> %s", len(texts), samples, out_dir)
    accelerator.wait_for_everyone()


def embed_text(
    settings: CacheParams,
    prompt_params: PromptParams,
    shards_dir: Path = paths.SHARDS,
    tokenizer_dir: Path = paths.TOKENIZER,
    encoder_dir: Path = paths.TEXT_ENCODER,
    out_dir: Path = paths.TEXT_CACHE,
) -> None:
    """Every distinct caption through the frozen text encoder that train_clip saved (trained or pretrained)."""
    for folder, what in ((tokenizer_dir, "tokenizer"), (encoder_dir, "text encoder")):
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"{folder}: no {what} folder (run `dvc repro train_clip`)")
    meta = read_all_meta(shards_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    encoder = CLIPTextModel.from_pretrained(encoder_dir).requires_grad_(False)
    accelerator = make_inference_accelerator(
        settings.mixed_precision, bf16_pays_on_cpu=encoder.config.hidden_size >= BF16_MIN_HIDDEN
    )
    log.info("embed_text: %d process(es), device %s, mixed precision %s",
             accelerator.num_processes, accelerator.device, accelerator.mixed_precision)
    prompts = choose_prompts(meta["val"], prompt_params.per_class, prompt_params.extra)
    write_text_cache(
        fresh_dir(accelerator, out_dir), accelerator, tokenizer, encoder, meta, prompts,
        batch_size=settings.batch_size, dtype=settings.dtype,
        encoder_hash=weights_hash(encoder_dir), tokenizer_hash=weights_hash(tokenizer_dir),
    )
