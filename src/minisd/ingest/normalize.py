"""Raster line-art normalization: any scan, photo or bitmap -> black strokes on white, square, cropped.

Heavy work happens at a working resolution of a few times the output size: flattening light,
denoising and cropping a 12-megapixel phone photo at full size would cost ~100x more and change
nothing that survives the final 128 px resize.
"""

from __future__ import annotations

import cv2
import numpy as np

from minisd.attributes import INK_THRESHOLD
from minisd.params.ingest import NormalizeParams
from minisd.ingest.gates import Reject

WORK_FACTOR = 4  # working resolution = WORK_FACTOR * image_size on the long side


def shrink(gray: np.ndarray, limit: int) -> np.ndarray:
    h, w = gray.shape
    if max(h, w) <= limit:
        return gray
    scale = limit / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def histogram(gray: np.ndarray) -> np.ndarray:
    return cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()


def percentile(hist: np.ndarray, q: float) -> int:
    """Percentile of a uint8 image from its histogram: ~50x cheaper than np.percentile."""
    cdf = np.cumsum(hist)
    return int(np.searchsorted(cdf, max(q / 100 * cdf[-1], 1)))


def is_inverted(gray: np.ndarray) -> bool:
    """Light strokes on a dark ground: the frame is dark AND the histogram's minority tail is light.

    The frame alone would flip a dim photo of paper; the tail alone would flip a drawing that is
    mostly filled ink (which must instead fail the too_much_ink gate). The histogram is only built
    for a dark frame: on two-level line art it costs ~120 us at 256 px (every count hits one bin).
    """
    h, w = gray.shape
    b = max(1, min(h, w) // 20)
    sides = (gray[:b], gray[-b:], gray[:, :b], gray[:, -b:])
    dark = sum(int(np.count_nonzero(s < INK_THRESHOLD)) for s in sides)
    if dark * 2 <= sum(s.size for s in sides):  # the frame's median is light
        return False
    hist = histogram(gray)
    lo, mid, hi = (percentile(hist, q) for q in (0.5, 50, 99.5))
    return (hi - mid) > (mid - lo)


def is_clean(gray: np.ndarray) -> bool:
    """Digital line art: most pixels are already pure paper (>= 250), so there is no light or grain to fix."""
    paper = cv2.threshold(gray, 249, 1, cv2.THRESH_BINARY)[1]
    return cv2.countNonZero(paper) > 0.5 * gray.size


def flatten_illumination(gray: np.ndarray) -> np.ndarray:
    """Divide by a paper estimate (max filter removes strokes, blur smooths) so shadows vanish."""
    h, w = gray.shape
    small = cv2.resize(gray, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    paper = cv2.dilate(small, kernel)
    paper = cv2.GaussianBlur(paper, (0, 0), 3)
    paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.divide(gray, np.maximum(paper, 1), scale=255)


def stretch(gray: np.ndarray) -> np.ndarray:
    """Map paper to white and the darkest ink to black; faint pencil becomes countable ink.

    The range never narrows below 80 levels, so a blank page's grain is not amplified into ink.
    """
    hi = 235.0
    lo = min(float(percentile(histogram(gray), 0.3)), hi - 80.0)
    lut = np.clip((np.arange(256, dtype=np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return cv2.LUT(gray, lut)


def ink_box(gray: np.ndarray, dust: float = 0.002) -> tuple[int, int, int, int]:
    """Bounding box of the ink, trimming at most `dust` of all ink from each side (stray specks)."""
    # ink per row and column: OpenCV's threshold + reduce is ~5x cheaper than numpy's count_nonzero(axis=)
    mask = cv2.threshold(gray, INK_THRESHOLD - 1, 1, cv2.THRESH_BINARY_INV)[1]  # 1 where gray < INK_THRESHOLD
    rows = cv2.reduce(mask, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    cols = cv2.reduce(mask, 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    total = int(rows.sum())
    if total == 0:
        raise Reject("blank", "no ink left after normalization")
    budget = dust * total

    def span(counts: np.ndarray) -> tuple[int, int]:
        head, tail = np.cumsum(counts), np.cumsum(counts[::-1])
        return int(np.argmax(head > budget)), len(counts) - int(np.argmax(tail > budget))

    (x0, x1), (y0, y1) = span(cols), span(rows)
    return x0, y0, x1, y1


def crop_square(gray: np.ndarray, box: tuple[int, int, int, int], margin: float, size: int) -> np.ndarray:
    """Square around the ink with `margin` on each side, white padding, resized to `size`."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) / (1 - 2 * margin)
    side = max(int(np.ceil(side)), 1)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    h, w = gray.shape
    pad = max(0, -left, -top, left + side - w, top + side - h)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255)
    square = gray[top + pad : top + pad + side, left + pad : left + pad + side]
    interpolation = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


def stroke_width(gray: np.ndarray) -> float:
    """Mean stroke width ~ 2 * ink area / contour length (exact for long thin strokes)."""
    mask = (gray < INK_THRESHOLD).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return 2.0 * float(mask.sum()) / max(perimeter, 1.0)


def set_stroke_width(gray: np.ndarray, target: float) -> np.ndarray:
    """Thicken (min filter) or thin (max filter) strokes one pixel layer at a time towards `target`."""
    steps = int(round((target - stroke_width(gray)) / 2))
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    for _ in range(abs(steps)):
        nxt = cv2.erode(gray, kernel) if steps > 0 else cv2.dilate(gray, kernel)
        if not (nxt < INK_THRESHOLD).any():
            break  # thinning never erases the drawing
        gray = nxt
    return gray


def finish(gray: np.ndarray, params: NormalizeParams) -> np.ndarray:
    """Optional binarization and stroke-width normalization, shared by every source kind."""
    if params.binarize:
        gray = np.where(gray < INK_THRESHOLD, 0, 255).astype(np.uint8)
    if params.stroke_width is not None:
        gray = set_stroke_width(gray, params.stroke_width)
    return gray


def normalize(gray: np.ndarray, params: NormalizeParams, size: int, photo: bool = True) -> np.ndarray:
    """uint8 gray of any size -> (size, size) uint8, black ink on white.

    Photos and scans get illumination flattening, denoising and contrast stretching; clean digital
    line art (mostly pure-white paper) and `photo=False` bitmaps skip them: nothing to fix, 3x faster.
    """
    gray = shrink(gray, WORK_FACTOR * size)
    if is_inverted(gray):
        gray = 255 - gray
    if photo and not is_clean(gray):
        if params.flatten_illumination:
            gray = flatten_illumination(gray)
        if params.denoise:  # a median filter would erase 1-px pencil lines; a light blur keeps them
            gray = cv2.GaussianBlur(gray, (3, 3), 0.7)
        gray = stretch(gray)
    gray = crop_square(gray, ink_box(gray), params.margin, size)
    return finish(gray, params)
