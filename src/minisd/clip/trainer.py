"""train_clip: tokenizer, then a CLIPModel trained contrastively on the train shards' pairs.

With `text_encoder.source: pretrained` nothing is trained: the pretrained text encoder and
tokenizer are saved as they are (and the whole CLIP when the path holds one), so the DAG has one
shape for both profiles. Outputs: models/tokenizer, models/text_encoder (stock CLIPTextModel,
frozen from here on as the seed freezes its CLIP), models/clip (stock CLIPModel + tokenizer).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import torch
from transformers import CLIPModel

from minisd import paths
from minisd.clip.batches import LayoutBatches
from minisd.clip.data import CaptionedImages, tokenize
from minisd.clip.loss import contrastive_loss
from minisd.clip.metrics import image_embeddings, retrieval, text_embeddings, zero_shot_accuracy
from minisd.clip.model import build_clip
from minisd.components import load_pretrained
from minisd.params.clip import ClipParams
from minisd.params.text import TextEncoderParams, TokenizerParams
from minisd.text_encoder import load_text_encoder, load_tokenizer
from minisd.shards import iter_samples
from minisd.tokenizer import save_tokenizer
from minisd.training.attention import train_with_fast_attention
from minisd.training.checkpoints import CheckpointManager
from minisd.training.loop import Schedule, check_finite, fit
from minisd.training.optim import adamw, evaluating, make_lr_scheduler
from minisd.training.precision import make_accelerator
from minisd.training.rng import DataOrder, seeded_generator

log = logging.getLogger("minisd.clip")
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp on the learned temperature
ZERO_SHOT_TEMPLATE = "a sketch of a {}"


class ClipTrainer:
    def __init__(self, params, model: CLIPModel, train: CaptionedImages, val: CaptionedImages | None,
                 tokenizer, accelerator):
        self.params, self.train, self.val, self.tokenizer, self.accelerator = params, train, val, tokenizer, accelerator
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
        keep = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
        optimizer = adamw([{"params": decay, "weight_decay": params.weight_decay}, {"params": keep, "weight_decay": 0.0}],
                          lr=params.lr, betas=(0.9, 0.98), eps=1e-6)  # CLIP's betas: stabler with big batches
        self.lr_scheduler = make_lr_scheduler(optimizer, "cosine", params.warmup_steps, params.max_steps)
        train_with_fast_attention(model, accelerator)
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self.raw = accelerator.unwrap_model(self.model)
        world, rank = accelerator.num_processes, accelerator.process_index
        self.order = (LayoutBatches(train.layouts, params.batch_size, params.layout_groups, params.seed, world, rank)
                      if params.layout_groups else DataOrder(len(train), params.batch_size, params.seed, world, rank))

    def state(self) -> dict:
        return {"model": self.model, "optimizer": self.optimizer, "lr_scheduler": self.lr_scheduler}

    def step(self, step: int) -> dict[str, float]:
        generator = seeded_generator(self.params.seed, step, self.accelerator.process_index)
        pixels, token_ids, rows = self.train.batch(self.order.indices(step), generator)
        device = self.accelerator.device
        with self.accelerator.autocast():
            out = self.model(input_ids=token_ids.to(device), pixel_values=pixels.to(device))
        loss = contrastive_loss(out.image_embeds, out.text_embeds, self.raw.logit_scale, rows.to(device))
        check_finite(loss, step + 1)
        self.accelerator.backward(loss)
        if self.params.grad_clip:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.params.grad_clip)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            self.raw.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        return {"loss": loss.item(), "temperature": 1 / self.raw.logit_scale.exp().item()}

    def log_extras(self, step: int) -> dict[str, float]:
        return {}

    def validate(self, step: int, live, final: bool) -> dict[str, float]:
        return validation_metrics(self.raw, self.val, self.tokenizer, self.accelerator.autocast) if self.val else {}

    def export(self, step: int) -> dict:
        save_clip(self.raw, self.tokenizer)
        return {}


def validation_metrics(model, val: CaptionedImages, tokenizer, autocast) -> dict[str, float]:
    """Retrieval among the distinct val captions; zero-shot class accuracy where val has labels."""
    with evaluating(model):
        images = image_embeddings(model, val.pixels(), autocast=autocast)
        texts = text_embeddings(model, val.token_ids, autocast=autocast)
        metrics = {f"val/{k}": v for k, v in retrieval(images, texts, val.positives()).items()}
        classes = sorted({c for c in val.labels if c})
        if len(classes) > 1:
            labelled = [i for i, c in enumerate(val.labels) if c]
            prompts = text_embeddings(model, tokenize(tokenizer, [ZERO_SHOT_TEMPLATE.format(c) for c in classes]),
                                      autocast=autocast)
            index = {c: i for i, c in enumerate(classes)}
            metrics["val/zero_shot_accuracy"] = zero_shot_accuracy(
                images[labelled], prompts, [index[val.labels[i]] for i in labelled])
            metrics["val/zero_shot_chance"] = 1 / len(classes)
    return metrics


def save_clip(model: CLIPModel, tokenizer, clip_dir: Path = paths.CLIP, encoder_dir: Path = paths.TEXT_ENCODER,
              tokenizer_dir: Path = paths.TOKENIZER) -> None:
    """The whole CLIP (with its tokenizer) and, for the pipeline, its text tower and the tokenizer alone."""
    for folder in (clip_dir, encoder_dir, tokenizer_dir):
        shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(clip_dir, safe_serialization=True)
    save_tokenizer(tokenizer, clip_dir)
    model.text_model.save_pretrained(encoder_dir, safe_serialization=True)
    save_tokenizer(tokenizer, tokenizer_dir)


def _save_pretrained_components(text: TextEncoderParams, tokenizer) -> None:
    """Pretrained text encoder: nothing to train; keep the whole CLIP too when the path has one."""
    for folder in (paths.CLIP, paths.TEXT_ENCODER, paths.TOKENIZER):
        shutil.rmtree(folder, ignore_errors=True)
    encoder = load_text_encoder(text, tokenizer)
    encoder.save_pretrained(paths.TEXT_ENCODER, safe_serialization=True)
    save_tokenizer(tokenizer, paths.TOKENIZER)
    try:
        clip = load_pretrained(CLIPModel, text.model_copy(update={"subfolder": None}), "CLIP",
                               "text_encoder")
    except Exception as error:  # a bare text-encoder checkpoint (SD's subfolder) has no vision tower
        log.info("train_clip: %s holds no full CLIPModel (%s); models/clip keeps only the text side",
                 text.path, str(error).splitlines()[0][:120])
        encoder.save_pretrained(paths.CLIP, safe_serialization=True)
    else:
        clip.save_pretrained(paths.CLIP, safe_serialization=True)
    save_tokenizer(tokenizer, paths.CLIP)


def train_clip(clip: ClipParams, tokenizer_params: TokenizerParams, text: TextEncoderParams,
               shards_dir: Path = paths.SHARDS) -> dict[str, float]:
    """The stage: a contrastive CLIP from scratch on the shards' captioned sketches (or, for a pretrained
    text encoder, its copy); saves the CLIP, its text tower and the tokenizer."""
    accelerator = make_accelerator(clip.mixed_precision)
    train_samples = list(iter_samples(shards_dir, "train"))
    val_samples = list(iter_samples(shards_dir, "val"))
    tokenizer = load_tokenizer(tokenizer_params, [c for s in train_samples for c in s.captions])
    if text.source == "pretrained":
        if accelerator.is_main_process:
            _save_pretrained_components(text, tokenizer)
            shutil.rmtree(paths.CLIP_LIVE, ignore_errors=True)
            paths.CLIP_LIVE.mkdir(parents=True)
            (paths.CLIP_LIVE / "metrics.json").write_text(json.dumps({"steps": 0, "source": "pretrained"}) + "\n")
        accelerator.wait_for_everyone()
        return {}

    def pairs(samples):
        return CaptionedImages.from_samples(samples, tokenizer, clip.image_size, clip.ink_coordinates, clip.ink_crop,
                                            with_layouts=clip.layout_groups is not None)

    train, val = pairs(train_samples), pairs(val_samples) if val_samples else None
    dropped = len(train_samples) - len(train)
    if dropped:
        log.warning("train_clip: %d train samples have no caption and are not used", dropped)
    log.info("train_clip: %d images, %d distinct captions (%d val images, %d val captions), device %s, %s",
             len(train), len(train.texts), len(val or []), len(val.texts) if val else 0,
             accelerator.device, accelerator.mixed_precision)
    model = build_clip(clip, text, tokenizer)
    trainer = ClipTrainer(clip, model, train, val, tokenizer, accelerator)
    sections = {name: section.model_dump(mode="json")
                for name, section in (("clip", clip), ("text_encoder", text), ("tokenizer", tokenizer_params))}
    checkpoints = CheckpointManager.for_stage("train_clip", sections, [shards_dir], clip.checkpoints_keep, accelerator)
    schedule = Schedule.from_params(clip, clip.batch_size * accelerator.num_processes)
    return fit(trainer, schedule, accelerator, checkpoints, paths.CLIP_LIVE, "train_clip").metrics
