"""Reconstruction quality of line art: PSNR, SSIM, ink F1 and paper grey on uint8 grayscale images.

All three take (N, H, W) uint8 arrays (the shard format), so evaluation can score any images
the same way. PSNR and SSIM are torchmetrics' (Wang et al. 2004's SSIM: 11x11 Gaussian window,
sigma 1.5), computed per image in float64 and averaged. Ink F1 exists because PSNR is dominated
by white paper: a blurry VAE that fades thin strokes still scores well on PSNR, but not on the F1
of its ink pixels. Paper grey exists because a small decoder leaves a faint grey cast on blank
paper, which PSNR averages away but a reader (and a feature network) sees on every generated sample.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from minisd.attributes import INK_THRESHOLD, ink_mask


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 2:
        a, b = a[None], b[None]
    return a, b


def _as_batches(reference: np.ndarray, test: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, H, W) float64 tensors in [0, 255], as torchmetrics' image metrics take them."""
    a, b = _pair(reference, test)
    return tuple(torch.from_numpy(x.astype(np.float64))[:, None] for x in (a, b))


def psnr(reference: np.ndarray, test: np.ndarray, max_db: float = 100.0) -> float:
    """Mean over images of 10 log10(255^2 / MSE), in dB; identical images count as `max_db`."""
    from torchmetrics.functional.image import peak_signal_noise_ratio  # here: importing torchmetrics costs ~1.5 s

    a, b = _as_batches(reference, test)
    db = peak_signal_noise_ratio(b, a, data_range=255.0, reduction="none", dim=(1, 2, 3))
    return float(db.clamp(max=max_db).mean())


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean SSIM over images (K1=0.01, K2=0.03)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    a, b = _as_batches(reference, test)
    return float(structural_similarity_index_measure(b, a, data_range=255.0, gaussian_kernel=True, sigma=1.5,
                                                      kernel_size=11))


def ink_f1(reference: np.ndarray, test: np.ndarray, threshold: int = INK_THRESHOLD) -> float:
    """F1 of ink pixels (darker than `threshold`) over all images pooled; 1.0 when neither has ink."""
    a, b = _pair(reference, test)
    truth, found = a < threshold, b < threshold
    tp = np.count_nonzero(truth & found)
    fp = np.count_nonzero(~truth & found)
    fn = np.count_nonzero(truth & ~found)
    return 1.0 if tp + fp + fn == 0 else float(2 * tp / (2 * tp + fp + fn))


def paper_grey(images: np.ndarray, ink_from: np.ndarray | None = None, clearance: int = 4,
               threshold: int = INK_THRESHOLD) -> float:
    """Mean darkening (255 - level) of the paper: pixels more than `clearance` px from any ink of
    `ink_from` (the originals, for reconstructions) or of `images` themselves; 0 on clean paper."""
    test, source = _pair(images, images if ink_from is None else ink_from)
    kernel = np.ones((2 * clearance + 1, 2 * clearance + 1), np.uint8)
    near_ink = np.stack([cv2.dilate(ink_mask(s, threshold).astype(np.uint8), kernel) for s in source]).astype(bool)
    paper = test[~near_ink]
    return float(255.0 - paper.mean()) if paper.size else 0.0


def reconstruction_metrics(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    return {"psnr": psnr(reference, test), "ssim": ssim(reference, test), "ink_f1": ink_f1(reference, test),
            "paper_grey": paper_grey(test, ink_from=reference)}
