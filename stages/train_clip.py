"""Stage train_clip: tokenizer + a small CLIP from the train shards -> models/{tokenizer,text_encoder,clip}."""

from minisd.clip.trainer import train_clip
from minisd.config import load_params
from minisd.stage import main


def run() -> None:
    train_clip(load_params())


if __name__ == "__main__":
    main(run, __file__, distributed=True)
