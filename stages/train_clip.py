"""Stage train_clip: tokenizer + a small CLIP from the train shards -> models/{tokenizer,text_encoder,clip}."""

from minisd.clip.trainer import train_clip
from minisd.params.base import load_sections
from minisd.params.clip import ClipParams
from minisd.params.text import TextEncoderParams, TokenizerParams
from minisd.stage import main


def run() -> None:
    train_clip(*load_sections(clip=ClipParams, tokenizer=TokenizerParams, text_encoder=TextEncoderParams))


if __name__ == "__main__":
    main(run, __file__, distributed=True)
