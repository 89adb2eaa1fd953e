"""Stage encode_latents: models/vae encodes every train and val sample -> data/cache/latents."""

from minisd.caches.encode import encode_latents
from minisd.config import load_params
from minisd.stage import main


def run() -> None:
    encode_latents(load_params())


if __name__ == "__main__":
    main(run, __file__, distributed=True)
