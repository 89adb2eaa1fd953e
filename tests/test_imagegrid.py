"""The one grid and gray-conversion helper, on hand-made arrays."""

from __future__ import annotations

import numpy as np
import torch

from minisd.imagegrid import GUTTER, tile, to_uint8


def test_tile_places_cells_row_major_with_grey_gutters_and_empty_cells():
    images = np.stack([np.full((3, 4), 10 * (i + 1), np.uint8) for i in range(3)])  # 10, 20, 30
    grid = tile(images)  # 3 images -> 2 x 2, the last cell empty
    assert grid.shape == (2 * 3 + 2, 2 * 4 + 2) and grid.dtype == np.uint8
    assert (grid[:3, :4] == 10).all() and (grid[:3, 6:] == 20).all() and (grid[5:, :4] == 30).all()
    assert (grid[3:5] == GUTTER).all() and (grid[:, 4:6] == GUTTER).all()  # gutters between cells only
    assert (grid[5:, 6:] == GUTTER).all()  # an empty cell is grey, never a white "blank sample"
    assert np.array_equal(tile(images[:1]), images[0])  # one image comes back as it is


def test_tile_keeps_channels_and_honours_columns_gap_and_background():
    images = np.zeros((3, 2, 2, 3), np.uint8)
    grid = tile(images, columns=3, gap=1, background=255)
    assert grid.shape == (2, 3 * 2 + 2, 3)
    assert (grid[:, 2] == 255).all() and (grid[:, 5] == 255).all() and grid[:, [0, 1, 3, 4, 6, 7]].max() == 0


def test_to_uint8_rounds_and_clips_tensors_and_arrays():
    pixels = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0])
    assert to_uint8(pixels).tolist() == [0, 0, 128, 191, 255, 255]  # 127.5 rounds to even, 191.25 down
    assert to_uint8(pixels.numpy()).tolist() == to_uint8(pixels).tolist()
    assert to_uint8(np.array([-0.5, 0.0, 0.5, 1.5]), low=0.0).tolist() == [0, 0, 128, 255]  # [0, 1] input
