"""UNet data layer and objective: caption choice/dropout, data order, min-SNR, ink weights, targets."""

import pytest
import torch

from minisd.params.unet import NoiseSchedulerParams
from minisd.stage import StageError
from minisd.unet.data import CaptionedLatents, DataOrder, seeded_generator
from minisd.unet.diffusion import (PAPER_DISTANCE, diffusion_loss, draw_noise, ink_weights, make_noise_scheduler,
                                   min_snr_weights, target_for)
from _unet import CLASSES, synthetic_split


def test_caption_dropout_rate_and_caption_choice():
    data = synthetic_split(n=40)
    indices = torch.arange(40).repeat(100)  # 4000 draws
    rows = data.pick_rows(indices, seeded_generator(0), caption_dropout=0.3)
    dropped = rows == data.empty_row
    assert abs(dropped.float().mean().item() - 0.3) < 0.03
    kept = ~dropped
    classes = indices % CLASSES
    assert torch.all((rows[kept] // 2) == classes[kept])  # a caption of the sample itself
    assert set(rows[kept].tolist()) == set(range(2 * CLASSES))  # every caption gets picked
    assert not (data.pick_rows(indices, seeded_generator(0), 0.0) == data.empty_row).any()
    assert (data.pick_rows(indices, seeded_generator(0), 1.0) == data.empty_row).all()


def test_batch_samples_latents_from_mean_and_std():
    data = synthetic_split(n=8)
    idx = torch.arange(8).repeat(500)
    latents, cond, _ = data.batch(idx, seeded_generator(1), 0.0)
    assert latents.dtype == torch.float32 and cond.shape == (len(idx), 4, 16)
    per_sample = latents.view(500, 8, *latents.shape[1:])
    assert torch.allclose(per_sample.mean(0), data.mean.float(), atol=0.01)
    assert torch.allclose(per_sample.std(0), data.std.float(), atol=0.01)


def test_data_order_is_seeded_disjoint_across_ranks_and_covers_epochs():
    size, batch = 10, 3
    single = DataOrder(size, batch, seed=5)
    stream = torch.cat([single.indices(m) for m in range(10)])  # 30 positions = 3 epochs, crossing boundaries
    for e in range(3):
        assert sorted(stream[e * size:(e + 1) * size].tolist()) == list(range(size))
    assert torch.equal(stream, torch.cat([DataOrder(size, batch, seed=5).indices(m) for m in range(10)]))
    assert not torch.equal(stream, torch.cat([DataOrder(size, batch, seed=6).indices(m) for m in range(10)]))
    r0, r1 = DataOrder(size, batch, 5, world=2, rank=0), DataOrder(size, batch, 5, world=2, rank=1)
    interleaved = torch.cat([torch.cat([r0.indices(m), r1.indices(m)]) for m in range(5)])
    assert torch.equal(interleaved, stream)  # two processes split the same stream, no overlap


def test_bad_inputs_are_named():
    data = synthetic_split(n=4)
    with pytest.raises(StageError, match="s0002"):
        CaptionedLatents(data.mean, data.std, [[0], [1], [], [2]], data.embeddings, data.empty_row, data.keys)
    with pytest.raises(StageError, match="std"):
        CaptionedLatents(data.mean, data.std[:, :2], data.caption_rows, data.embeddings, data.empty_row)


def test_noise_scheduler_and_min_snr():
    sched = make_noise_scheduler(NoiseSchedulerParams(prediction_type="epsilon", rescale_zero_terminal_snr=False))
    assert sched.config.clip_sample is False and sched.config.steps_offset == 1
    t = torch.tensor([0, 10, 500, 999])
    w = min_snr_weights(sched, t, gamma=5.0)
    assert w[0] == pytest.approx(5.0 / (sched.alphas_cumprod[0] / (1 - sched.alphas_cumprod[0])).item(), rel=1e-4)
    assert w[-1] == pytest.approx(1.0)  # low SNR: full weight
    zsnr = make_noise_scheduler(NoiseSchedulerParams(prediction_type="v_prediction", rescale_zero_terminal_snr=True))
    assert zsnr.alphas_cumprod[-1].item() < 1e-6 and zsnr.config.timestep_spacing == "trailing"
    wz = min_snr_weights(zsnr, t, gamma=5.0)
    assert torch.isfinite(wz).all() and wz[-1] == pytest.approx(0.0, abs=1e-6)
    eps = make_noise_scheduler(NoiseSchedulerParams(rescale_zero_terminal_snr=True))
    assert torch.isfinite(min_snr_weights(eps, t, 5.0)).all()
    x, n = torch.randn(4, 4, 2, 2), torch.randn(4, 4, 2, 2)
    assert torch.equal(target_for(sched, x, n, t), n)
    v = target_for(zsnr, x, n, t)
    a = zsnr.alphas_cumprod[t].sqrt().view(-1, 1, 1, 1)
    assert torch.allclose(v, a * n - (1 - a**2).sqrt() * x, atol=1e-5)


def test_timestep_power_draws_noisy_timesteps_more_often():
    latents = torch.zeros(20000, 1, 1, 1)
    _, uniform = draw_noise(latents, torch.Generator().manual_seed(0), 1000, 0.0)
    _, same = draw_noise(latents, torch.Generator().manual_seed(0), 1000, 0.0, timestep_power=1.0)
    assert torch.equal(uniform, same)  # power 1 is the plain uniform draw, byte for byte
    _, later = draw_noise(latents, torch.Generator().manual_seed(0), 1000, 0.0, timestep_power=2.0)
    assert later.min() >= 0 and later.max() <= 999 and later.dtype == torch.long
    assert abs(uniform.float().mean().item() - 499.5) < 10
    assert abs(later.float().mean().item() - 666.7) < 10  # density ~ t: mean 2T/3
    assert (later >= 500).float().mean().item() > 0.73  # 3/4 of the draws in the noisier half


def test_ink_weights_favour_the_strokes_and_keep_each_samples_share():
    """Paper latents near one vector, strokes far from it: a small sketch's few ink positions get
    (1 + w) times its paper's weight, every sample's weights average 1, a blank page stays uniform."""
    paper = torch.tensor([0.1, -0.5, 0.8, -0.8])
    means = paper.view(1, 4, 1, 1) + 0.05 * torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    means[0, :, 2:4, 2:4] += 3.0  # small sketch: 4 of 64 positions
    means[1, :, :, :5] -= 2.5  # large sketch: 40 of 64 positions
    w = ink_weights(means, 4.0)
    assert w.shape == (3, 1, 8, 8)
    assert torch.allclose(w.mean(dim=(1, 2, 3)), torch.ones(3))
    assert torch.allclose(w[0, 0, 2, 2] / w[0, 0, 0, 7], torch.tensor(5.0))
    assert w[0, 0, 2, 2] > w[1, 0, 0, 0] > 1 > w[1, 0, 0, 7]  # the small sketch's strokes weigh most
    assert torch.equal(w[2], torch.ones(1, 8, 8))  # nothing farther than PAPER_DISTANCE from paper
    assert (means[2] - paper.view(4, 1, 1)).norm(dim=0).max() < PAPER_DISTANCE


def test_diffusion_loss_weights_scale_each_positions_error():
    class Echo(torch.nn.Module):  # predicts its noisy input: a fixed, known error per position
        def forward(self, x, t, cond):
            return type("Out", (), {"sample": x})()

    sched = make_noise_scheduler(NoiseSchedulerParams())
    g = torch.Generator().manual_seed(1)
    latents, noise = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 4, 4, 4, generator=g)
    t = torch.tensor([100, 700])
    plain = diffusion_loss(Echo(), sched, latents, None, noise, t)
    assert torch.allclose(diffusion_loss(Echo(), sched, latents, None, noise, t, weights=torch.ones(2, 1, 4, 4)), plain)
    weights = torch.zeros(2, 1, 4, 4)
    weights[:, :, 0, 0] = 16.0  # all the weight on one position
    error = (sched.add_noise(latents, noise, t) - target_for(sched, latents, noise, t))[:, :, 0, 0]
    assert torch.allclose(diffusion_loss(Echo(), sched, latents, None, noise, t, weights=weights), error.pow(2).mean())
