"""evaluate/strokes.py: stroke width from ink and contour, on drawings of known width."""

import cv2
import numpy as np
import pytest

from minisd.evaluate.strokes import median_stroke_width, stroke_width, stroke_widths


def canvas() -> np.ndarray:
    return np.full((128, 128), 255, np.uint8)


@pytest.mark.parametrize("width", [2, 3, 5, 8])
def test_a_bar_and_a_ring_of_known_width_measure_it(width):
    bar = canvas()
    bar[60 : 60 + width, 10:118] = 0
    yy, xx = np.mgrid[:128, :128]
    ring = np.where(np.abs(np.hypot(yy - 63.5, xx - 63.5) - 40) < width / 2, 0, 255).astype(np.uint8)
    assert stroke_width(bar) == pytest.approx(width, rel=0.1)
    assert stroke_width(ring) == pytest.approx(width, rel=0.1)


def test_blank_images_have_no_width_and_the_median_skips_them():
    thin, thick = canvas(), canvas()
    cv2.circle(thin, (64, 64), 30, 0, 2)
    cv2.circle(thick, (64, 64), 30, 0, 6)
    assert stroke_width(canvas()) is None
    assert median_stroke_width(np.stack([canvas(), canvas()])) is None
    assert median_stroke_width(np.stack([thin, thin, thick, canvas()])) == pytest.approx(stroke_width(thin))
    assert stroke_widths(np.stack([thick]), np.stack([thin])) == {
        "stroke_width": pytest.approx(stroke_width(thick)), "stroke_width_real": pytest.approx(stroke_width(thin))}
