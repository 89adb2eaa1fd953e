"""Reconstruction quality of line art: PSNR, SSIM and ink F1 on uint8 grayscale images.

All three take (N, H, W) uint8 arrays (the shard format), so evaluation can score any images
the same way. Ink F1 exists because PSNR is dominated by white paper: a blurry VAE that fades
thin strokes still scores well on PSNR, but not on the F1 of its ink pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from minisd.attributes import INK_THRESHOLD


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 2:
        a, b = a[None], b[None]
    return a, b


def psnr(reference: np.ndarray, test: np.ndarray, max_db: float = 100.0) -> float:
    """Mean over images of 10 log10(255^2 / MSE), in dB; identical images count as `max_db`."""
    a, b = _pair(reference, test)
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        db = np.where(mse > 0, 10 * np.log10(255.0**2 / np.maximum(mse, 1e-12)), max_db)
    return float(np.minimum(db, max_db).mean())


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03)."""
    a, b = _pair(reference, test)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    scores = []
    for x, y in zip(a.astype(np.float64), b.astype(np.float64)):
        mx, my = blur(x), blur(y)
        vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        scores.append(s.mean())
    return float(np.mean(scores))


def ink_f1(reference: np.ndarray, test: np.ndarray, threshold: int = INK_THRESHOLD) -> float:
    """F1 of ink pixels (darker than `threshold`) over all images pooled; 1.0 when neither has ink."""
    a, b = _pair(reference, test)
    truth, found = a < threshold, b < threshold
    tp = np.count_nonzero(truth & found)
    fp = np.count_nonzero(~truth & found)
    fn = np.count_nonzero(truth & ~found)
    return 1.0 if tp + fp + fn == 0 else float(2 * tp / (2 * tp + fp + fn))


def reconstruction_metrics(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    return {"psnr": psnr(reference, test), "ssim": ssim(reference, test), "ink_f1": ink_f1(reference, test)}
