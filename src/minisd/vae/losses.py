"""The VAE objective for line art: pixel terms, a KL term, and extra weight where the ink is.

Sketches are ~95% white paper, so a plain MSE is happy to fade or drop thin strokes. The ink
term is the L1 error averaged over the pixels that are ink in the target *or* in the
reconstruction: a missing stroke then costs as much as a whole page of slightly grey paper, and
so does a stroke drawn twice as thick (weighting only the target's ink made strokes bolder).
"""

from __future__ import annotations

import torch
from torch import nn

from minisd.attributes import INK_THRESHOLD
from minisd.params.vae import LossWeights
from minisd.stage import StageError
from minisd.vae.lpips import LPIPS

INK_LEVEL = INK_THRESHOLD / 127.5 - 1.0  # the ink threshold in the VAE's [-1, 1] pixel range


def load_lpips(weights: LossWeights) -> LPIPS | None:
    if weights.lpips == 0:
        return None
    if not weights.lpips_path:
        raise StageError(
            "vae.loss.lpips is > 0 but vae.loss.lpips_path is not set: point it at a local LPIPS "
            "safetensors file (see src/minisd/vae/lpips.py) or set vae.loss.lpips: 0"
        )
    try:
        return LPIPS.from_path(weights.lpips_path)
    except (OSError, KeyError) as error:
        raise StageError(f"vae.loss.lpips_path = {weights.lpips_path!r}: {error}") from error


class VaeLoss(nn.Module):
    def __init__(self, weights: LossWeights):
        super().__init__()
        self.weights = weights
        self.lpips = load_lpips(weights)

    def forward(self, recon: torch.Tensor, target: torch.Tensor, kl: torch.Tensor | None):
        """Weighted total and its parts (floats, for logging); computed in fp32."""
        w = self.weights
        recon, target = recon.float(), target.float()
        error = recon - target
        parts: dict[str, torch.Tensor] = {}
        if w.l1:
            parts["l1"] = error.abs().mean()
        if w.mse:
            parts["mse"] = error.pow(2).mean()
        if w.ink:
            ink = ((target < INK_LEVEL) | (recon.detach() < INK_LEVEL)).float()
            parts["ink"] = (error.abs() * ink).sum() / ink.sum().clamp(min=1.0)
        if w.kl and kl is not None:
            parts["kl"] = kl.float().mean()
        if self.lpips is not None:
            parts["lpips"] = self.lpips(recon, target).mean()
        total = sum(getattr(w, name) * value for name, value in parts.items())
        return total, {name: float(value.detach()) for name, value in parts.items()}
