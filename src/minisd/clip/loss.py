"""Contrastive (InfoNCE) loss with every pair of the same caption text counted as a match.

Synthetic and templated data repeat caption texts, so a batch often holds two images with the
same caption. The target of each row is spread evenly over all columns with the same text.
Measured (tests/test_clip.py): with softmax InfoNCE in both directions this gives exactly the
loss and gradients of plain CLIP's identity targets, because duplicate texts have identical
embeddings and their pushes cancel; so plain CLIP does not push same-caption pairs apart either.
The explicit target documents that, and stays right for a sigmoid loss, where it would not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def same_text_targets(text_ids: torch.Tensor) -> torch.Tensor:
    """(B, B) row-normalized targets: uniform over the columns sharing row i's caption."""
    same = (text_ids[:, None] == text_ids[None, :]).float()
    return same / same.sum(dim=1, keepdim=True)


def contrastive_loss(image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor,
                     text_ids: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy over image->text and text->image similarities (L2-normalized inputs)."""
    logits = logit_scale.exp() * image_embeds.float() @ text_embeds.float().T
    targets = same_text_targets(text_ids)  # symmetric, so it serves both directions
    image_to_text = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    text_to_image = -(targets * F.log_softmax(logits.T, dim=1)).sum(dim=1).mean()
    return (image_to_text + text_to_image) / 2
