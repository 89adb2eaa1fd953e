"""Stage `train_vae`: shards -> models/vae (AutoencoderKL, measured scaling_factor) + results/vae (DVCLive)."""

from minisd import paths
from minisd.params.base import load_section
from minisd.params.vae import VaeParams
from minisd.stage import main
from minisd.vae.trainer import train_vae


def run() -> None:
    train_vae(load_section("vae", VaeParams), paths.SHARDS, paths.VAE, paths.VAE_LIVE, paths.CHECKPOINTS)


if __name__ == "__main__":
    main(run, __file__, distributed=True)
