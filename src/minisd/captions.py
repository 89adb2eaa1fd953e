"""Captions from a class and its measured size and position words, shared by every source that
places its drawings (synthetic doodles, placed Quick, Draw! drawings) and by the evaluation sheets.

The indefinite article of a class name: "an airplane", "a unicorn", "an hourglass". The sound decides a/an, not the letter; plurals and mass nouns ("scissors", "rain") and names that
carry their own article ("The Eiffel Tower") take none. The word lists cover Quick, Draw!'s 345
categories, the main source of class names here; other words follow the letter rule.
"""

from __future__ import annotations

import numpy as np

# words starting with a vowel letter but a consonant sound ("a unicorn", "a one-way sign")
CONSONANT_SOUND = ("uni", "use", "usu", "uten", "ura", "ure", "uro", "uku", "eu", "ewe", "one")
# words starting with a silent h ("an hourglass")
SILENT_H = ("hour", "honest", "honor", "honour", "heir")
# plurals and mass nouns among Quick, Draw!'s categories: "a sketch of scissors"
NO_ARTICLE = frozenset({
    "animal migration", "asparagus", "binoculars", "bread", "broccoli", "camouflage", "drums",
    "eyeglasses", "flip flops", "grapes", "grass", "headphones", "lightning", "matches", "pants",
    "peas", "pliers", "rain", "rollerskates", "scissors", "shorts", "stairs", "stitches",
    "toothpaste", "underwear", "yoga",
})  # fmt: skip


def vowel_sound(word: str) -> bool:
    low = word.lower()
    if low.startswith(SILENT_H):
        return True
    if low.startswith(CONSONANT_SOUND):
        return False
    return low[:1] in ("a", "e", "i", "o", "u")


def with_article(word: str) -> str:
    """`word` as it reads after "a sketch of": with a/an, with its own "the", or bare."""
    word = word.strip()
    low = word.lower()
    if low.startswith("the "):
        return "the " + word[4:]
    if low in NO_ARTICLE:
        return word
    return ("an " if vowel_sound(word) else "a ") + word


POSITION_PHRASES = {
    "top left": "in the top left", "top": "at the top", "top right": "in the top right",
    "left": "on the left", "center": "in the center", "right": "on the right",
    "bottom left": "in the bottom left", "bottom": "at the bottom", "bottom right": "in the bottom right",
}  # fmt: skip
TEMPLATES = (
    "a {size} {cls} {where}",
    "{pos}: a {size} {cls}",
    "{where}, a {size} {cls}",
    "a sketch of a {size} {cls}, {pos}",
    "a {size} drawing of {a_cls} {where}",
    "{a_cls}, {size}, {pos}",
)
SHEET_TEMPLATE = 1  # "{pos}: a {size} {cls}": the evaluation sheets' fixed prompt


def layout_caption(template: str, cls: str, size: str, pos: str) -> str:
    return template.format(cls=cls, a_cls=with_article(cls), size=size, pos=pos, where=POSITION_PHRASES[pos])


def layout_captions(cls: str, size: str, pos: str, rng: np.random.Generator, n: int = 3) -> list[str]:
    """`n` different templates, in template order, naming the class, its size and its place."""
    chosen = sorted(rng.choice(len(TEMPLATES), size=n, replace=False))
    return [layout_caption(TEMPLATES[i], cls, size, pos) for i in chosen]
