"""Text normalisation shared by word-level models.

``seed001_clean`` is the preprocessing of a Keras sentiment write-up: lower-case, expand English
contractions, and set punctuation apart from words so that a whitespace tokenizer sees
"good , bad !" rather than "good,bad!".
"""

from __future__ import annotations

import re

# Typographic apostrophes (’ ‘) are common in scraped reviews; treat them like '.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'"})

# Whole words whose expansion is not the generic one ("can't" is not "ca not").
_IRREGULAR = {"can't": "cannot", "won't": "will not", "shan't": "shall not", "ain't": "is not",
              "let's": "let us"}
# Endings after any word. "'d" is read as "would" (it may also be "had").
_SUFFIXES = {"n't": " not", "'re": " are", "'m": " am", "'ll": " will", "'ve": " have", "'d": " would"}
# "'s" is "is" only after these words; elsewhere it is usually a possessive ("the film's plot") and stays.
_IS_WORDS = ("it", "he", "she", "that", "what", "there", "here", "where", "who", "how")

_CONTRACTION = re.compile(
    r"\b(?:" + "|".join(map(re.escape, _IRREGULAR)) + r")\b"
    + r"|(?<=\w)(?:" + "|".join(map(re.escape, _SUFFIXES)) + r")\b"
    + r"|\b(?:" + "|".join(_IS_WORDS) + r")'s\b"
)
# A punctuation mark, or a run of the same mark ("...", "!!", "--", "''"), becomes a token of its own.
# A single apostrophe or hyphen inside a word ("film's", "well-made") and a point or comma inside a
# number ("3.5", "1,000") are part of the word; the first alternative matches those to keep them.
_PUNCTUATION = re.compile(r"(?<=\w)['-](?=\w)|(?<=\d)[.,](?=\d)|([^\w\s])\1*")
_SPACES = re.compile(r"\s+")


def _expand(match: re.Match) -> str:
    word = match.group()
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith("'s"):
        return word[:-2] + " is"
    return _SUFFIXES[word]


def _split_off(match: re.Match) -> str:
    return match.group() if match.group(1) is None else f" {match.group()} "


def seed001_clean(text: str) -> str:
    """Lower-cased ``text`` with contractions expanded and punctuation split from words."""
    text = text.lower().translate(_APOSTROPHES)
    text = _CONTRACTION.sub(_expand, text)
    text = _PUNCTUATION.sub(_split_off, text)
    return _SPACES.sub(" ", text).strip()
