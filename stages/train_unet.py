"""Stage train_unet: text + latent caches -> models/unet (EMA weights), models/scheduler, results/unet.

Resumes step-exactly from .checkpoints/ after an interruption; runs under `accelerate launch`
when MINISD_ACCELERATE_ARGS is set (see minisd.stage).
"""

from minisd import paths
from minisd.params.base import load_section
from minisd.params.unet import UnetParams
from minisd.stage import main
from minisd.unet.trainer import Outputs, train_unet


def run() -> None:
    outputs = Outputs(paths.UNET, paths.SCHEDULER, paths.UNET_LIVE)
    params = load_section("unet", UnetParams)
    train_unet(params, paths.TEXT_CACHE, paths.LATENT_CACHE, paths.VAE, outputs, paths.CHECKPOINTS)


if __name__ == "__main__":
    main(run, __file__, distributed=True)
