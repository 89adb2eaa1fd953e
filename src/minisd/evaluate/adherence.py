"""Does a generated sample show what its prompt asked for? Class by the judge, size and position by
`minisd.attributes.measure`, the same definitions the synthetic labels were made with."""

from __future__ import annotations

import numpy as np

from minisd.attributes import measure


def _rate(hits: list[bool]) -> float | None:
    return float(np.mean(hits)) if hits else None


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate: honest at small n and near 0 or 1, unlike p +- 2 SE."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def score_samples(prompts: list[dict], images: np.ndarray, predicted: list[list[str]] | None) -> tuple[dict, list[dict], dict]:
    """Accuracies over the samples whose prompt carries the needed labels, plus one record per prompt.

    images: (P, S, H, W) uint8; predicted: the judge's class per sample (P x S), None without a judge.
    Keys: judge_accuracy (class), size_accuracy, position_accuracy, attributes_accuracy (size and
    position both right) and joint_accuracy (class, size and position all right); None when no
    prompt carries those labels; judge_<size>_accuracy: the class within each size the prompts ask
    for (small sketches are the hard ones); ci95 holds each rate's 95% interval. The counts say
    how many samples each rate is over.
    """
    hits = {k: [] for k in ("judge", "size", "position", "attributes", "joint")}
    by_size: dict[str, list[bool]] = {}
    records = []
    for p, prompt in enumerate(prompts):
        cls = prompt.get("class")
        want = prompt.get("attributes") or {}
        want_size, want_pos = want.get("size"), want.get("position")
        samples = []
        for s, image in enumerate(images[p]):
            got = measure(image)
            guess = predicted[p][s] if predicted is not None else None
            ok_class = guess == cls if cls is not None and predicted is not None else None
            ok_size = got["size"] == want_size if want_size is not None else None
            ok_pos = got["position"] == want_pos if want_pos is not None else None
            if ok_class is not None:
                hits["judge"].append(ok_class)
                if want_size is not None:
                    by_size.setdefault(f"judge_{want_size}", []).append(ok_class)
            if ok_size is not None:
                hits["size"].append(ok_size)
            if ok_pos is not None:
                hits["position"].append(ok_pos)
            if ok_size is not None and ok_pos is not None:
                hits["attributes"].append(ok_size and ok_pos)
                if ok_class is not None:
                    hits["joint"].append(ok_class and ok_size and ok_pos)
            samples.append({"judge": guess, **got})
        records.append({"text": prompt["text"], "class": cls, "attributes": {"size": want_size, "position": want_pos},
                        "samples": samples})
    hits |= dict(sorted(by_size.items()))
    metrics = {f"{k}_accuracy": _rate(v) for k, v in hits.items()}
    counts = {f"{k}_samples": len(v) for k, v in hits.items()}
    metrics["ci95"] = {f"{k}_accuracy": dict(zip(("low", "high"), wilson_interval(sum(v), len(v))))
                       for k, v in hits.items() if v}
    return metrics, records, counts
