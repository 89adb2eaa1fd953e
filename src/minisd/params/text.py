"""The `tokenizer` and `text_encoder` sections: the text side that train_clip trains or loads."""

from __future__ import annotations

from pydantic import Field

from minisd.params.base import PretrainedRef


class TokenizerParams(PretrainedRef):
    vocab_size: int = Field(2048, ge=514)  # scratch BPE: 2 x 256 byte tokens + 2 specials + merges
    max_length: int = Field(32, gt=1)  # scratch captions need <= 13; SD's CLIP uses 77


class TextEncoderParams(PretrainedRef):
    hidden_size: int = Field(128, gt=0)
    num_layers: int = Field(4, gt=0)
    num_heads: int = Field(4, gt=0)
    intermediate_size: int = Field(512, gt=0)
    seed: int = 0
