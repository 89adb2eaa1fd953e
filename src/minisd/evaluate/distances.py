"""FID and KID between two feature sets, in numpy float64 (no scipy needed).

FID's matrix square root uses the symmetric form tr sqrt(S1^1/2 S2 S1^1/2), which is PSD, so an
eigendecomposition is exact and stable even when few samples make the covariances singular.
Not torchmetrics': its FID and KID metrics take images and run the feature net themselves, while
evaluate scores several pairs of sets with the judge features it already has, and its KID averages
random subsets where this one uses every sample (deterministic). Its FID formula gives the same
value on the same features (checked to 1e-9, session 11).
"""

from __future__ import annotations

import numpy as np


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2); needs >= 2 samples each."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"FID needs at least 2 samples per set (got {len(a)} and {len(b)})")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _psd_sqrt(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)).sum()
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)
    return max(value, 0.0)


def kernel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 with KID's cubic polynomial kernel (x.y / d + 1)^3, over all samples.

    Using every sample instead of random subsets keeps it deterministic; it can be slightly
    negative when the sets are indistinguishable.
    """
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"KID needs at least 2 samples per set (got {len(a)} and {len(b)})")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = a.shape[1]
    k_aa = (a @ a.T / d + 1.0) ** 3
    k_bb = (b @ b.T / d + 1.0) ** 3
    k_ab = (a @ b.T / d + 1.0) ** 3
    m, n = len(a), len(b)
    term_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    term_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(term_a + term_b - 2.0 * k_ab.mean())


def split_real(count: int, subset: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two disjoint halves of the real set: (a subset of half A of size `subset`, half B).

    Generated samples are compared with half B; the floor compares `subset` real images from half A
    with the same half B, so both numbers share reference set and sample size and are comparable.
    """
    half_a, half_b = np.arange(0, count, 2), np.arange(1, count, 2)
    take = min(subset, len(half_a))
    picks = np.unique(np.linspace(0, len(half_a) - 1, take).round().astype(int)) if take else np.array([], int)
    return half_a[picks], half_b
