"""Stage embed_text: every distinct caption and eval prompt through train_clip's frozen text encoder -> data/cache/text."""

from minisd.caches.embed import embed_text
from minisd.config import load_params
from minisd.stage import main


def run() -> None:
    embed_text(load_params())


if __name__ == "__main__":
    main(run, __file__, distributed=True)
