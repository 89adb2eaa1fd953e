"""The `clip` section: the vision tower's shape and train_clip's contrastive recipe."""

from __future__ import annotations

from pydantic import Field, model_validator

from minisd.params.base import LoopParams


class ClipParams(LoopParams):
    """train_clip: the vision tower's shape and the contrastive training recipe (text tower: `text_encoder`)."""

    image_size: int = Field(48, ge=8)  # sketches are downscaled to this side for the ViT
    patch_size: int = Field(8, gt=0)
    hidden_size: int = Field(128, gt=0)
    num_layers: int = Field(2, gt=0)
    num_heads: int = Field(4, gt=0)
    intermediate_size: int = Field(512, gt=0)
    projection_dim: int = Field(128, gt=0)
    sincos_positions: bool = False  # start the ViT's patch positions from 2-D sine-cosine, not noise
    ink_coordinates: bool = True  # ViT input: gray + the ink's x and y (clip/data.py: clip_pixels)
    ink_crop: bool = True  # ViT gray channel: the ink's bounding square, scaled to fill the frame (small sketches legible)
    temperature: float = Field(0.07, gt=0, le=1)  # initial softmax temperature (learned from there)
    seed: int = 0
    batch_size: int = Field(64, gt=1)  # per process; contrastive: larger batches, more negatives
    layout_groups: int | None = Field(None, gt=0)  # batches of same-layout groups (clip/batches.py); null: uniform
    lr: float = Field(2e-3, gt=0)
    warmup_steps: int = Field(20, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    max_steps: int = Field(2800, gt=0)
    grad_clip: float | None = Field(1.0, gt=0)
    val_every: int = Field(350, gt=0)
    checkpoint_every: int = Field(350, gt=0)

    @model_validator(mode="after")
    def _groups_divide_batch(self):
        if self.layout_groups and self.batch_size % self.layout_groups:
            raise ValueError(f"layout_groups ({self.layout_groups}) must divide batch_size ({self.batch_size})")
        if self.ink_crop and not self.ink_coordinates:
            raise ValueError("ink_crop needs ink_coordinates: true (the coordinates are what keep size and position)")
        return self
