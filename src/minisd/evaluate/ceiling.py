"""What the UNet could reach at most: the judge on real val sketches, as drawn and after a round
trip through the exported VAE. A perfect UNet draws what the VAE can decode, so the round-trip
rate is its ceiling, and `judge_accuracy` below it is the UNet's (and its text's) shortfall."""

from __future__ import annotations

import numpy as np

from minisd.evaluate.adherence import wilson_interval
from minisd.shards import Sample
from minisd.vae.validation import reconstruct


def judge_ceiling(judge, vae, val: list[Sample]) -> tuple[dict, dict]:
    """({judge_real_accuracy, judge_vae_roundtrip_accuracy, each also as _<size>_accuracy}, 95% intervals).

    Over the val sketches whose class the judge knows; a size that no sketch is labelled with has no key.
    """
    labelled = [s for s in val if s.label in judge.classes]
    if not labelled:
        return {}, {}
    images = np.stack([s.image for s in labelled])
    sizes = np.array([(s.attributes or {}).get("size") or "" for s in labelled])
    truth = np.array([s.label for s in labelled])
    metrics, intervals = {}, {}
    for name, shown in (("judge_real", images), ("judge_vae_roundtrip", reconstruct(vae, images))):
        hits = np.array(judge.predict(shown)) == truth
        groups = {"": np.ones(len(hits), bool)} | {f"_{size}": sizes == size for size in sorted(set(sizes) - {""})}
        for infix, rows in groups.items():
            key = f"{name}{infix}_accuracy"
            metrics[key] = float(hits[rows].mean())
            intervals[key] = dict(zip(("low", "high"), wilson_interval(int(hits[rows].sum()), int(rows.sum()))))
    return metrics, intervals
