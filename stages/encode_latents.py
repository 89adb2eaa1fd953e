"""Stage encode_latents: models/vae encodes every train and val sample -> data/cache/latents."""

from minisd.caches.encode import encode_latents
from minisd.params.base import load_section
from minisd.params.caches import LatentCacheParams
from minisd.stage import main


def run() -> None:
    encode_latents(load_section("encode_latents", LatentCacheParams))


if __name__ == "__main__":
    main(run, __file__, distributed=True)
