"""What a CLIP says about (image, text) pairs: retrieval, zero-shot class accuracy, CLIP score.

Every rate comes with its chance level, so a number has a scale: among M candidate captions a
guess is right 1/M of the time (more when an image has several correct captions).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F


@torch.inference_mode()
def _embed(features_of, inputs: torch.Tensor, batch_size: int, autocast) -> torch.Tensor:
    out = []
    for i in range(0, len(inputs), batch_size):
        with autocast():
            features = features_of(inputs[i : i + batch_size])
        out.append(F.normalize(_tensor(features).float(), dim=-1).cpu())
    return torch.cat(out)


def image_embeddings(model, pixels: torch.Tensor, batch_size: int = 256, autocast=nullcontext) -> torch.Tensor:
    """L2-normalized image embeddings (N, D), float32 on CPU."""
    device = next(model.parameters()).device
    return _embed(lambda x: model.get_image_features(pixel_values=x.to(device)), pixels, batch_size, autocast)


def text_embeddings(model, token_ids: torch.Tensor, batch_size: int = 256, autocast=nullcontext) -> torch.Tensor:
    """L2-normalized text embeddings (M, D), float32 on CPU."""
    device = next(model.parameters()).device
    return _embed(lambda x: model.get_text_features(input_ids=x.to(device)), token_ids, batch_size, autocast)


def _tensor(features):
    """get_*_features returns a tensor (or, in some transformers versions, an output with pooler_output)."""
    return features if isinstance(features, torch.Tensor) else features.pooler_output


def retrieval(images: torch.Tensor, texts: torch.Tensor, positives: torch.Tensor) -> dict[str, float]:
    """Top-1/top-5 both ways. positives (N, M): text j is a correct caption of image i.

    image->text: is one of the image's captions ranked first (in the top 5) among all M texts;
    text->image: is the best-ranked image one that has this caption.
    """
    similarity = images @ texts.T
    k = min(5, similarity.shape[1])
    i2t = positives.gather(1, similarity.topk(k, dim=1).indices)
    k_images = min(5, similarity.shape[0])
    t2i = positives.T.gather(1, similarity.T.topk(k_images, dim=1).indices)
    has_image = positives.any(dim=0)
    return {
        "image_to_text_top1": i2t[:, 0].float().mean().item(),
        "image_to_text_top5": i2t.any(dim=1).float().mean().item(),
        "image_to_text_chance": positives.float().sum(dim=1).div(positives.shape[1]).mean().item(),
        "text_to_image_top1": t2i[has_image, 0].float().mean().item(),
        "text_to_image_top5": t2i[has_image].any(dim=1).float().mean().item(),
        "text_to_image_chance": positives[:, has_image].float().mean(dim=0).mean().item(),
    }


def zero_shot_accuracy(images: torch.Tensor, class_texts: torch.Tensor, labels: list[int]) -> float:
    """Share of images whose nearest class prompt ("a sketch of a {class}") is their own class."""
    guess = (images @ class_texts.T).argmax(dim=1)
    return (guess == torch.tensor(labels)).float().mean().item()


def clip_score(images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """Per pair 100 * max(cos, 0), the usual CLIP score (Hessel et al. 2021); rows are paired."""
    return 100 * (images * texts).sum(dim=1).clamp(min=0)
