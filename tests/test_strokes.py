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
    small, large = canvas(), canvas()
    cv2.circle(small, (64, 64), 10, 0, 2)
    cv2.circle(large, (64, 64), 50, 0, 6)
    widths = stroke_widths(np.stack([large, small, canvas()]), ["large", "small", None], np.stack([small, small]))
    assert widths["stroke_width_large"] == pytest.approx(stroke_width(large))
    assert widths["stroke_width_small"] == pytest.approx(stroke_width(small))
    assert widths["stroke_width_medium"] is None  # no prompt asked for one
    assert widths["stroke_width_real"] == widths["stroke_width_real_small"] == pytest.approx(stroke_width(small))
    assert widths["stroke_width_real_large"] is None  # the real ones measure small
    assert widths["stroke_width"] == pytest.approx(np.median([stroke_width(large), stroke_width(small)]))
