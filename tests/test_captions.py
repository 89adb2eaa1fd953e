"""Quick Draw captions: the article follows the sound, plurals and names take none."""

import pytest

from minisd.captions import with_article
from minisd.ingest.quickdraw import caption_for


@pytest.mark.parametrize("word, expected", [
    ("cat", "a cat"), ("airplane", "an airplane"), ("umbrella", "an umbrella"), ("eye", "an eye"),
    ("hourglass", "an hourglass"), ("unicorn", "a unicorn"), ("ukulele", "a ukulele"), ("hot dog", "a hot dog"),
    ("scissors", "scissors"), ("rain", "rain"), ("flip flops", "flip flops"), ("The Eiffel Tower", "the Eiffel Tower"),
    ("Octopus", "an Octopus"), (" owl ", "an owl"),
])  # fmt: skip
def test_with_article(word, expected):
    assert with_article(word) == expected


def test_templates():
    assert caption_for("a sketch of {a_word}", "alarm clock") == "a sketch of an alarm clock"
    assert caption_for("{word}", "The Mona Lisa") == "The Mona Lisa"
    assert caption_for("a doodle: {a_word}", "The Mona Lisa") == "a doodle: the Mona Lisa"
