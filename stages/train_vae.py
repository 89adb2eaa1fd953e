"""Stage `train_vae`: shards -> models/vae (AutoencoderKL, measured scaling_factor) + results/vae (DVCLive)."""

from minisd import paths
from minisd.config import load_params
from minisd.stage import main
from minisd.vae.trainer import train_vae


def run() -> None:
    params = load_params()
    train_vae(params.vae, paths.SHARDS, paths.VAE, paths.VAE_LIVE, paths.CHECKPOINTS)


if __name__ == "__main__":
    main(run, __file__, distributed=True)
