"""(sketch, caption) pairs for CLIP training and scoring, held in memory as tensors.

Images are downscaled once (INTER_AREA keeps thin strokes as grey instead of dropping them) and
every distinct caption is tokenized once; a batch is then an index into both. Which sample and
which of its captions come from `seeded_generator(seed, step, rank)`: a resumed run draws the
same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from minisd.attributes import INK_THRESHOLD, ink_bbox, layout
from minisd.shards import Sample
from minisd.stage import StageError
from minisd.pixels import to_pixels


def downscale(images: np.ndarray, size: int) -> np.ndarray:
    images = np.asarray(images)
    if images.shape[-1] != size:
        images = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images])
    return np.ascontiguousarray(images)


INK = 200  # gray below this is ink (strokes are dark; anti-aliased edges are grey)
MIN_CROP = 1 / 8  # an ink box is at least this share of the frame: a dot is not blown up to fill it


def stroke_bbox(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the grey ink (< INK) that touches a dark core (< attributes.INK_THRESHOLD).

    A stroke's anti-aliased edge belongs to it; faint grey with no dark pixel in it is not ink: a
    decoder leaves such haze on generated sketches (a frame near the border, a light square), and
    taking it into the box would shrink the drawing to a corner of the crop. A sketch with no dark
    pixel at all (light pencil) keeps every grey pixel.
    """
    grey = (image < INK).astype(np.uint8)
    dark = image < INK_THRESHOLD
    if not dark.any():
        return ink_bbox(image, INK)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(grey, connectivity=8)
    kept = stats[np.unique(labels[dark])]  # the components holding dark pixels (never the paper, label 0)
    x0, y0 = kept[:, cv2.CC_STAT_LEFT].min(), kept[:, cv2.CC_STAT_TOP].min()
    x1 = (kept[:, cv2.CC_STAT_LEFT] + kept[:, cv2.CC_STAT_WIDTH]).max()
    y1 = (kept[:, cv2.CC_STAT_TOP] + kept[:, cv2.CC_STAT_HEIGHT]).max()
    return int(x0), int(y0), int(x1), int(y1)


def ink_boxes(images: np.ndarray) -> np.ndarray:
    """(N, 3) float: each sketch's square around its strokes as (x0, y0, side), in frames of side 1.

    The square is centred on the strokes' bounding box (`stroke_bbox`), 10% wider than its longer
    side; a blank image gets the whole frame.
    """
    boxes = np.tile(np.array([0.0, 0.0, 1.0]), (len(images), 1))
    for i, image in enumerate(images):
        box = stroke_bbox(image)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        h, w = image.shape
        side = max((x1 - x0) / w, (y1 - y0) / h, MIN_CROP) * 1.1
        cx, cy = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
        boxes[i] = cx - side / 2, cy - side / 2, side
    return boxes


def crop_to_boxes(images: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, size, size): each box scaled to fill the frame; outside the sketch is paper."""
    out = np.empty((len(images), size, size), np.uint8)
    for i, (image, (x0, y0, side)) in enumerate(zip(images, boxes)):
        h, w = image.shape
        pad = max(h, w)
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255)
        left, top = int(round(x0 * w)) + pad, int(round(y0 * h)) + pad
        crop = padded[top : top + max(1, int(round(side * h))), left : left + max(1, int(round(side * w)))]
        out[i] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return out


def tower_images(images: np.ndarray, size: int, ink_crop: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Full-size sketches -> (images at the tower's side, ink boxes or None): done once per image."""
    images = np.asarray(images)
    if not ink_crop:
        return downscale(images, size), None
    boxes = ink_boxes(images)
    return crop_to_boxes(images, boxes, size), boxes


def clip_pixels(images: np.ndarray | torch.Tensor, size: int, ink_coordinates: bool = False,
                boxes: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
    """uint8 (N, H, W) gray sketches -> float (N, 3, size, size) in [-1, 1], as the vision tower sees them.

    Gray in all three channels, or with `ink_coordinates` the gray in channel 0 and the ink's x and
    y in channels 1 and 2 (CoordConv): each patch then says where its ink lies from the first step,
    which a from-scratch ViT's learned positions take far longer to find than CLIP's budget allows.
    With `boxes` (from `tower_images(..., ink_crop=True)`) the images are ink crops and the x, y
    are still those of the whole frame: the shape fills the tower's few patches at any size,
    and where it lies and how large it is stay in the coordinates.
    """
    pixels = to_pixels(downscale(images, size), channels=3)
    if ink_coordinates:
        ink = (1 - pixels[:, 0]) / 2  # paper 0, ink 1
        if boxes is None:
            xs = ys = torch.linspace(-1, 1, size).expand(len(pixels), size)
        else:
            steps = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # pixel centres
            boxes = torch.as_tensor(np.asarray(boxes), dtype=torch.float32)
            x0, y0, side = boxes[:, :1], boxes[:, 1:2], boxes[:, 2:]
            xs, ys = 2 * (x0 + side * steps) - 1, 2 * (y0 + side * steps) - 1
        pixels[:, 1] = ink * xs[:, None, :]
        pixels[:, 2] = ink * ys[:, :, None]
    return pixels


def clip_inputs(images: np.ndarray, size: int, ink_coordinates: bool = False, ink_crop: bool = False) -> torch.Tensor:
    """Full-size sketches -> the vision tower's input, as training saw them (scorers call this)."""
    small, boxes = tower_images(images, size, ink_crop)
    return clip_pixels(small, size, ink_coordinates, boxes)


def model_inputs(model, folder: Path, images: np.ndarray) -> torch.Tensor:
    """The vision input a saved CLIP expects: ours as it trained, a pretrained one through its image processor."""
    if (Path(folder) / "preprocessor_config.json").is_file():
        from transformers import AutoImageProcessor

        processor = AutoImageProcessor.from_pretrained(folder)
        return processor(images=[np.repeat(im[..., None], 3, axis=2) for im in images],
                         return_tensors="pt")["pixel_values"]
    return clip_inputs(images, model.config.vision_config.image_size, uses_ink_coordinates(model), uses_ink_crop(model))


def uses_ink_coordinates(model) -> bool:
    """The input convention a saved CLIP was trained with (absent, as in stock CLIPs: gray)."""
    return bool(getattr(model.config.vision_config, "ink_coordinates", False))


def uses_ink_crop(model) -> bool:
    return bool(getattr(model.config.vision_config, "ink_crop", False))


def tokenize(tokenizer, texts: list[str]) -> torch.Tensor:
    """Token ids padded to the tokenizer's length, exactly as the pipeline tokenizes a prompt."""
    return tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def trim_padding(token_ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Drop the columns after the longest caption's end token.

    The text tower is causal, so positions after a caption's first end token never change its
    pooled embedding (the one CLIP's loss sees): training on the trimmed batch gives the same
    loss at a fraction of the cost (captions here use about 13 of 32 positions).
    """
    ends = (token_ids == eos_id).int().argmax(dim=1)
    return token_ids[:, : int(ends.max()) + 1]


@dataclass
class CaptionedImages:
    """One split: images at the vision tower's size, the distinct caption texts, and who has which."""

    images: torch.Tensor  # uint8 (N, size, size)
    texts: list[str]  # distinct captions, sorted
    token_ids: torch.Tensor  # (len(texts), max_length)
    caption_rows: list[list[int]]  # per image: its captions' rows in `texts`
    labels: list[str | None]
    eos_id: int
    ink_coordinates: bool = False  # the vision tower's input convention, see clip_pixels
    boxes: torch.Tensor | None = None  # (N, 3) ink boxes when `images` are ink crops (clip.ink_crop)
    layouts: list[str] | None = None  # per image: `attributes.layout`, for clip/batches.py

    def __post_init__(self):
        if len(self.images) == 0:
            raise StageError("no captioned images to train CLIP on (every sample needs a caption)")
        counts = torch.tensor([len(rows) for rows in self.caption_rows])
        self._offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        self._rows = torch.tensor([r for rows in self.caption_rows for r in rows], dtype=torch.long)

    @classmethod
    def from_samples(cls, samples: list[Sample], tokenizer, size: int, ink_coordinates: bool = False,
                     ink_crop: bool = False, with_layouts: bool = False) -> "CaptionedImages":
        """Samples without any caption cannot be paired and are left out (counted in the caller's log).

        `with_layouts` measures each sketch's size and position (only `clip.layout_groups` uses them).
        """
        samples = [s for s in samples if any(c.strip() for c in s.captions)]
        texts = sorted({c for s in samples for c in s.captions if c.strip()})
        row = {t: i for i, t in enumerate(texts)}
        images, boxes = (tower_images(np.stack([s.image for s in samples]), size, ink_crop) if samples
                         else (np.zeros((0, size, size), np.uint8), None))  # fmt: skip
        return cls(
            images=torch.from_numpy(images),
            texts=texts,
            token_ids=tokenize(tokenizer, texts) if texts else torch.zeros((0, 1), dtype=torch.long),
            caption_rows=[list(dict.fromkeys(row[c] for c in s.captions if c.strip())) for s in samples],
            labels=[s.label for s in samples],
            eos_id=tokenizer.eos_token_id,
            ink_coordinates=ink_coordinates,
            boxes=None if boxes is None else torch.from_numpy(boxes).float(),
            layouts=[layout(s.image) for s in samples] if with_layouts else None,
        )

    def __len__(self) -> int:
        return len(self.images)

    def pixels(self, indices: torch.Tensor | slice | None = None) -> torch.Tensor:
        images = self.images if indices is None else self.images[indices]
        boxes = self.boxes if self.boxes is None or indices is None else self.boxes[indices]
        return clip_pixels(images, images.shape[-1], self.ink_coordinates, boxes)

    def batch(self, indices: torch.Tensor, generator: torch.Generator):
        """(pixels, token ids, caption rows): one random caption of each sample; rows tell same texts apart."""
        start, count = self._offsets[indices], self._offsets[indices + 1] - self._offsets[indices]
        pick = (torch.rand(len(indices), generator=generator) * count).long().clamp_max(count - 1)
        rows = self._rows[start + pick]
        return self.pixels(indices), trim_padding(self.token_ids[rows], self.eos_id), rows

    def positives(self) -> torch.Tensor:
        """(N images, M texts) bool: text j is one of image i's captions."""
        match = torch.zeros(len(self), len(self.texts), dtype=torch.bool)
        for i, rows in enumerate(self.caption_rows):
            match[i, rows] = True
        return match
