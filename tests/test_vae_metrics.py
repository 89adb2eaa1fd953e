"""Reconstruction metrics, the ink-aware loss and LPIPS-from-a-local-file, on hand-made images."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from minisd.params.vae import LossWeights
from minisd.pixels import to_pixels
from minisd.training.rng import seeded_generator
from minisd.vae.data import ImageBank
from minisd.vae.losses import VaeLoss
from minisd.vae.lpips import CONVS, LPIPS, TAPS
from minisd.vae.metrics import ink_f1, paper_grey, psnr, ssim
from minisd.vae.validation import reconstruction_grid, to_gray_uint8


def _stroke_image(size: int = 32) -> np.ndarray:
    image = np.full((size, size), 255, np.uint8)
    image[10, 4:28] = 0  # one thin horizontal stroke
    image[4:28, 20] = 0
    return image


def test_psnr_known_values():
    a = np.full((2, 8, 8), 100, np.uint8)
    assert psnr(a, a) == 100.0  # identical images are capped, not inf
    b = a + 1  # MSE 1 -> 48.13 dB
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2), abs=1e-5)  # torchmetrics keeps data_range in float32
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, a[:, :4])


def test_ssim_is_one_for_identical_and_drops_with_noise():
    image = _stroke_image()
    assert ssim(image, image) == pytest.approx(1.0)
    noisy = np.clip(image.astype(int) + np.random.default_rng(0).integers(-60, 60, image.shape), 0, 255)
    assert ssim(image, noisy.astype(np.uint8)) < 0.7


def test_ssim_matches_torchmetrics_definition():
    """The separable OpenCV window must give torchmetrics' number (Gaussian window, reflected borders),
    including strokes that touch the image's edge, where the border rule decides the value."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    rng = np.random.default_rng(3)
    reference = np.stack([_stroke_image() for _ in range(3)])
    reference[1, :, :6] = 0  # ink on the left border
    test = np.clip(cv2.GaussianBlur(reference.transpose(1, 2, 0), (5, 5), 1.2).transpose(2, 0, 1)
                   + rng.integers(-25, 25, reference.shape), 0, 255).astype(np.uint8)  # fmt: skip
    as_tensor = lambda x: torch.from_numpy(x.astype(np.float64))[:, None]  # noqa: E731
    expected = structural_similarity_index_measure(as_tensor(test), as_tensor(reference), data_range=255.0,
                                                   gaussian_kernel=True, sigma=1.5, kernel_size=11)  # fmt: skip
    assert ssim(reference, test) == pytest.approx(float(expected), abs=1e-12)
    assert ssim(reference, test) != pytest.approx(ssim(reference[:1], test[:1]), abs=1e-3)  # really per image


def test_ink_f1_punishes_lost_strokes_that_psnr_forgives():
    image = _stroke_image(128)
    faded = image.copy()
    faded[10, 4:28] = 200  # the horizontal stroke fades to light grey: no longer ink
    assert ink_f1(image, image) == 1.0
    assert ink_f1(image, faded) == pytest.approx(2 * 24 / (2 * 24 + 24), abs=0.03)  # half the ink lost
    assert psnr(image, faded) > 30  # while PSNR still looks fine
    blank = np.full_like(image, 255)
    assert ink_f1(blank, blank) == 1.0 and ink_f1(image, blank) == 0.0


def test_paper_grey_is_the_cast_on_blank_paper_away_from_the_ink():
    image = _stroke_image()
    assert paper_grey(image) == 0.0 and paper_grey(np.full_like(image, 255)) == 0.0
    cast = image.copy()
    cast[cast == 255] = 245  # a uniform cast: 10 levels on all the paper
    assert paper_grey(cast, ink_from=image) == pytest.approx(10.0)
    halo = image.copy()
    halo[cv2.dilate((image < 128).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0] = 0  # a thicker stroke
    assert paper_grey(halo, ink_from=image) == 0.0  # changes within `clearance` of the ink are not paper


def test_pixels_round_trip_and_crops():
    images = np.stack([_stroke_image(), 255 - _stroke_image()])
    pixels = to_pixels(images)
    assert pixels.shape == (2, 3, 32, 32) and pixels.min() == -1 and pixels.max() == 1
    assert np.array_equal(to_gray_uint8(pixels), images)
    global_rng = torch.get_rng_state()
    bank = ImageBank(images)
    batch = bank.batch(5, seeded_generator(0, 7), crop=16)
    assert batch.shape == (5, 3, 16, 16)
    assert torch.equal(batch, bank.batch(5, seeded_generator(0, 7), crop=16))  # a pure function of (seed, step)
    assert not torch.equal(batch, bank.batch(5, seeded_generator(0, 8), crop=16))
    assert bank.batch(3, seeded_generator(0, 7)).shape == (3, 3, 32, 32)
    assert torch.equal(torch.get_rng_state(), global_rng)  # the global generator is never drawn from


def test_grid_puts_originals_over_reconstructions():
    originals = np.zeros((3, 8, 8), np.uint8)
    recons = np.full((3, 8, 8), 255, np.uint8)
    grid = reconstruction_grid(originals, recons, columns=2)
    assert grid.shape == (4 * 8 + 3 * 2, 2 * 8 + 2)  # two row pairs, 2 px gutters
    assert grid[:8, :8].max() == 0 and grid[10:18, :8].min() == 255  # original 0 over its reconstruction
    assert grid[20:28, :8].max() == 0 and (grid[20:28, 10:] == 128).all()  # original 2; its row padded grey


def test_ink_term_weighs_a_missing_stroke_like_a_page_of_grey():
    target = to_pixels(_stroke_image(128)[None])
    no_stroke = to_pixels(np.full((1, 128, 128), 255, np.uint8))
    grey_page = target.clone()
    grey_page[target > 0] -= 0.1  # paper 5% grey, strokes intact
    plain = VaeLoss(LossWeights(l1=0, mse=1, kl=0, ink=0))
    inked = VaeLoss(LossWeights(l1=0, mse=1, kl=0, ink=1))
    # plain MSE rates erasing both strokes about like a faint grey page; the ink term does not
    assert plain(no_stroke, target, None)[0] < plain(grey_page, target, None)[0] * 1.5
    assert inked(no_stroke, target, None)[0] > inked(grey_page, target, None)[0] * 10
    # and a stroke drawn three times as thick costs like a missing one, not nothing
    thick = to_pixels(cv2.erode(_stroke_image(128), np.ones((3, 3), np.uint8))[None])
    ink_only = VaeLoss(LossWeights(l1=0, mse=0, kl=0, ink=1))
    assert ink_only(thick, target, None)[0] > 0.5 * ink_only(no_stroke, target, None)[0]
    total, parts = VaeLoss(LossWeights(kl=0.5))(target, target, torch.tensor([2.0, 4.0]))
    assert parts["kl"] == 3.0 and total.item() == pytest.approx(1.5)


def _tiny_lpips_file(path) -> None:
    """A VGG16-shaped net with 4 channels per conv, random weights: the layout, not the numbers."""
    generator = torch.Generator().manual_seed(0)
    tensors, channels = {}, 3
    for i in CONVS:
        tensors[f"features.{i}.weight"] = torch.randn(4, channels, 3, 3, generator=generator) * 0.3
        tensors[f"features.{i}.bias"] = torch.zeros(4)
        channels = 4
    for k in range(len(TAPS)):
        tensors[f"lin{k}.model.1.weight"] = torch.rand(1, 4, 1, 1, generator=generator)
    save_file(tensors, str(path))


def test_lpips_from_local_file(tmp_path):
    _tiny_lpips_file(tmp_path / "lpips.safetensors")
    lpips = LPIPS.from_path(tmp_path)  # a folder holding one file works too
    a = to_pixels(np.stack([_stroke_image(), _stroke_image()]))
    b = to_pixels(np.stack([_stroke_image(), 255 - _stroke_image()]))
    d = lpips(a, b)
    assert d.shape == (2,) and d[0].item() == pytest.approx(0.0, abs=1e-6) and d[1].item() > 0
    loss = VaeLoss(LossWeights(lpips=1.0, lpips_path=str(tmp_path / "lpips.safetensors")))
    recon = b.clone().requires_grad_(True)
    total, parts = loss(recon, a, None)
    total.backward()
    assert parts["lpips"] > 0 and recon.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.lpips.parameters())
