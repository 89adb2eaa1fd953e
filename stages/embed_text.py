"""Stage embed_text: tokenizer + frozen text encoder -> models/, every distinct caption -> data/cache/text."""

from minisd.caches.embed import embed_text
from minisd.config import load_params
from minisd.stage import main


def run() -> None:
    embed_text(load_params())


if __name__ == "__main__":
    main(run, __file__, distributed=True)
