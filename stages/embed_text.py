"""Stage embed_text: every distinct caption and eval prompt through train_clip's frozen text encoder -> data/cache/text."""

from minisd.caches.embed import embed_text
from minisd.params.base import load_sections
from minisd.params.caches import CacheParams, PromptParams
from minisd.stage import main


def run() -> None:
    embed_text(*load_sections(embed_text=CacheParams, prompts=PromptParams))


if __name__ == "__main__":
    main(run, __file__, distributed=True)
