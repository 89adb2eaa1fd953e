"""Procedural hand-drawn doodles: the offline default dataset.

Each class is a few strokes in unit coordinates ([-1, 1], y down). A doodle gets a random affine
distortion, a smooth wobble along every stroke, overshooting or open ends on closed shapes, a
random stroke width, size and position. Labels are *measured* from the drawn ink with
minisd.attributes, exactly as evaluation will measure generated images.
"""

from __future__ import annotations

import math

import numpy as np

from minisd.attributes import POSITIONS, measure
from minisd.captions import layout_captions
from minisd.ingest.placement import fit_to_spot, random_spot
from minisd.ingest.render import render_strokes
from minisd.shards import Sample

TAU = 2 * math.pi


def arc(cx, cy, rx, ry, start=0.0, end=TAU, n=48):
    t = np.linspace(start, end, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def poly(*points, closed=True):
    p = np.array(points, dtype=np.float64)
    return np.vstack([p, p[:1]]) if closed else p


# ----------------------------------------------------------------------------- classes (unit coords)


def circle(rng):
    return [arc(0, 0, 1, rng.uniform(0.85, 1.0), n=64)]


def square(rng):
    h = rng.uniform(0.8, 1.0)
    return [poly((-1, -h), (1, -h), (1, h), (-1, h))]


def triangle(rng):
    return [poly((rng.uniform(-0.2, 0.2), -1), (1, 0.8), (-1, 0.8))]


def star(rng):
    inner = rng.uniform(0.38, 0.48)
    t = -math.pi / 2 + np.arange(10) * TAU / 10
    r = np.where(np.arange(10) % 2 == 0, 1.0, inner)
    return [poly(*np.stack([r * np.cos(t), r * np.sin(t)], axis=1))]


def heart(rng):
    t = np.linspace(0, TAU, 80)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return [np.stack([x / 16, (y + 2.5) / 15], axis=1)]


def house(rng):
    roof = rng.uniform(-1.0, -0.8)
    return [
        poly((-0.7, -0.15), (0.7, -0.15), (0.7, 1), (-0.7, 1)),
        poly((-0.9, -0.15), (0, roof), (0.9, -0.15), closed=False),
        poly((-0.2, 1), (-0.2, 0.4), (0.2, 0.4), (0.2, 1), closed=False),
    ]


def tree(rng):
    bumps = int(rng.integers(6, 9))
    t = np.linspace(0, TAU, 96)
    r = 0.62 * (1 + 0.12 * np.abs(np.sin(t * bumps / 2)))
    crown = np.stack([r * np.cos(t), -0.35 + 0.95 * r * np.sin(t)], axis=1)
    return [crown, poly((-0.15, 0.22), (-0.15, 1), closed=False), poly((0.15, 0.22), (0.15, 1), closed=False)]


def sun(rng):
    rays = int(rng.integers(7, 10))
    strokes = [arc(0, 0, 0.45, 0.45, n=48)]
    for a in rng.uniform(0, TAU / rays) + np.arange(rays) * TAU / rays:
        c, s = math.cos(a), math.sin(a)
        strokes.append(poly((0.62 * c, 0.62 * s), (c, s), closed=False))
    return strokes


def fish(rng):
    body = arc(-0.25, 0, 0.75, rng.uniform(0.4, 0.5), n=56)
    tail = poly((0.45, 0), (1, -0.45), (1, 0.45))
    eye = arc(-0.62, -0.12, 0.07, 0.07, n=10)
    return [body, tail, eye]


def flower(rng):
    petals = int(rng.integers(5, 8))
    cy = -0.4
    strokes = [arc(0, cy, 0.17, 0.17, n=24)]
    for k in range(petals):
        a = k * TAU / petals
        t = np.linspace(0, TAU, 24)
        px, py = 0.2 * np.cos(t) + 0.38, 0.13 * np.sin(t)  # an ellipse pointing outwards
        c, s = math.cos(a), math.sin(a)
        strokes.append(np.stack([px * c - py * s, cy + px * s + py * c], axis=1))
    strokes.append(poly((0, cy + 0.55), (0.05, 1), closed=False))
    strokes.append(poly((0.03, 0.55), (0.4, 0.35), (0.06, 0.7), closed=False))  # leaf
    return strokes


def moon(rng):
    """Crescent: the left part of the unit circle closed by an arc through (-inner, 0)."""
    half = rng.uniform(0.75, 1.0)  # end-point angle of the outer arc, radians from +x
    ex, ey = math.cos(half), math.sin(half)
    inner = rng.uniform(0.2, 0.45)
    c = (ex**2 + ey**2 - inner**2) / (2 * (ex + inner))  # circle centre on the x axis through both
    r = c + inner
    outer = arc(0, 0, 1, 1, half, TAU - half, n=48)
    a = math.atan2(ey, ex - c)
    back = arc(c, 0, r, r, TAU - a, a, n=40)
    return [np.vstack([outer, back])]


def cloud(rng):
    bumps = int(rng.integers(4, 7))
    t = np.linspace(math.pi, TAU, 90)  # upper half, left to right
    r = 1 + 0.22 * np.abs(np.sin((t - math.pi) * bumps))
    top = np.stack([r * np.cos(t), 0.3 + 0.6 * r * np.sin(t)], axis=1)
    return [np.vstack([top, [[1.0, 0.3], [0.9, 0.55], [-0.9, 0.55], [-1.0, 0.3]]])]


def lightning(rng):
    k = rng.uniform(-0.1, 0.1)
    return [poly((0.1 + k, -1), (-0.5, 0.15), (-0.02, 0.15), (-0.3, 1), (0.5, -0.25), (0.06, -0.25), (0.4 + k, -1))]


def umbrella(rng):
    canopy = arc(0, 0, 1, 0.75, math.pi, TAU, n=48)
    scallops = [arc(-1 + (2 * i + 1) / 3, 0, 1 / 3, 0.12, math.pi, 0, n=12) for i in range(3)]
    edge = np.vstack(scallops)[::-1]
    handle = np.vstack([poly((0, 0), (0, 0.8), closed=False), arc(-0.17, 0.8, 0.17, 0.17, 0, math.pi, n=12)])
    return [np.vstack([canopy, edge]), handle]


CLASSES = {
    "circle": circle, "square": square, "triangle": triangle, "star": star, "heart": heart,
    "house": house, "tree": tree, "sun": sun, "fish": fish, "flower": flower, "moon": moon,
    "cloud": cloud, "lightning bolt": lightning, "umbrella": umbrella,
}  # fmt: skip
CLOSED = {"circle", "square", "triangle", "star", "heart", "moon", "cloud", "lightning bolt"}

# ----------------------------------------------------------------------------- hand-drawn look


def densify(stroke: np.ndarray, step: float) -> np.ndarray:
    seg = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(seg)])
    if s[-1] == 0:
        return stroke
    t = np.linspace(0, s[-1], max(2, int(s[-1] / step) + 1))
    return np.stack([np.interp(t, s, stroke[:, 0]), np.interp(t, s, stroke[:, 1])], axis=1)


def wobble(stroke: np.ndarray, rng, amplitude: float) -> np.ndarray:
    """Smooth low-frequency drift plus a little tremor, as a hand would draw it."""
    n = len(stroke)
    t = np.linspace(0, 1, n)[:, None]
    freq = rng.uniform(0.5, 3.0, size=(1, 2, 3))
    phase = rng.uniform(0, TAU, size=(1, 2, 3))
    amp = rng.uniform(0.3, 1.0, size=(1, 2, 3)) * amplitude / 2
    drift = (amp * np.sin(TAU * freq * t[:, :, None] + phase)).sum(axis=2)
    tremor = rng.normal(0, amplitude * 0.12, size=(n, 2))
    return stroke + drift + tremor


def loose_ends(stroke: np.ndarray, rng) -> np.ndarray:
    """A closed stroke either overshoots its start or stops a little short of it."""
    n = len(stroke)
    k = int(rng.integers(0, max(2, n // 10)))
    if rng.random() < 0.6:
        return np.vstack([stroke, stroke[1 : 1 + k]])
    return stroke[: n - k // 2] if k // 2 else stroke


def distort(strokes, rng):
    angle = rng.uniform(-0.35, 0.35)
    c, s = math.cos(angle), math.sin(angle)
    squash = np.diag(rng.uniform(0.85, 1.15, size=2))
    shear = np.array([[1, rng.uniform(-0.12, 0.12)], [0, 1]])
    m = np.array([[c, -s], [s, c]]) @ shear @ squash
    return [p @ m.T for p in strokes]


# ----------------------------------------------------------------------------- one doodle


def draw(cls: str, rng, size: int = 128) -> tuple[np.ndarray, str, str]:
    """One doodle of `cls` -> (image, intended size word, intended position word)."""
    strokes = distort(CLASSES[cls](rng), rng)
    wob = rng.uniform(0.025, 0.05)
    strokes = [wobble(densify(s, 0.05), rng, wob) for s in strokes]
    if cls in CLOSED:
        strokes[0] = loose_ends(strokes[0], rng)
    size_word, cell = random_spot(rng)
    thickness = rng.uniform(2.0, 4.0) * size / 128
    points = np.concatenate(strokes)
    scale, offset = fit_to_spot(points.min(axis=0), points.max(axis=0), size, thickness, size_word, cell, rng)
    # at 1x: the default's doodles (and every number measured on them) have always had these pixels
    canvas = render_strokes(strokes, size, thickness, 0.0, (scale, offset), supersample=1)
    return canvas, size_word, POSITIONS[cell]


def make_sample(index: int, seed: int, size: int, name: str = "synthetic") -> Sample:
    """Doodle number `index` of the stream `seed`: independent of chunking and worker count."""
    rng = np.random.default_rng([seed, index])
    names = list(CLASSES)
    cls = names[index % len(names)]
    image, _, _ = draw(cls, rng, size)
    attributes = measure(image)
    return Sample(
        key=f"{name}-{index:06d}",
        image=image,
        captions=layout_captions(cls, attributes["size"], attributes["position"], rng),
        label=cls,
        attributes=attributes,
        source=name,
        origin=f"synthetic:{seed}:{index}",
    )
