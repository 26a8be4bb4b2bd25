"""SMILES tokenizer: a lossless regex split into chemical tokens.

Tokens follow Schwaller et al., 'Molecular Transformer' (ACS Central Science 2019): bracket atoms
(``[nH]``, ``[C@@H]``, ``[N+]``) and ``Cl``/``Br`` stay whole, and so do ``%10`` ring closures.
A string with a character that no token covers is refused (:class:`SeqlabError`), never shortened:
tokens always join back to the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from seqlab.errors import SeqlabError
from seqlab.tokenizers.chars import CharTokenizer

# Schwaller et al.'s pattern, plus %(123): RDKit writes ring closures above 99 that way.
SMILES_RE = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%\([0-9]+\)|%[0-9]{2}|[0-9])"
)


# Most tokens in a SMILES that data preparation keeps (MOSES has at most 57 characters);
# longer molecules are refused there and counted on the card, so no tokenizer has to cut one.
MAX_TOKENS = 256



def split_smiles(smiles: str) -> list[str]:
    """The tokens of ``smiles``; they join back to it exactly, else :class:`SeqlabError`."""
    tokens = SMILES_RE.findall(smiles)
    if sum(map(len, tokens)) != len(smiles):
        at = 0
        for m in SMILES_RE.finditer(smiles):
            if m.start() != at:
                break
            at = m.end()
        raise SeqlabError(f"SMILES {smiles!r} has {smiles[at]!r} at position {at}, which no SMILES token covers")
    return tokens


class SmilesTokenizer(CharTokenizer):
    """SMILES tokens to ids for molecule models: ``<pad>``=0, ``<unk>``=1, ``<bos>``=2, ``<eos>``=3.

    ``encode`` gives ``<bos>`` + the tokens + ``<eos>`` and never cuts: a cut SMILES is another,
    usually invalid, molecule. ``max_len`` is the most tokens a molecule may have; longer ones are
    refused before encoding (by data preparation, and by the task against ``--max-len``).
    Tokens outside the vocabulary become ``<unk>``.
    """

    kind = "smiles"
    unk_id = 1
    specials: tuple[list[int], list[int]] = ([], [])
    split = staticmethod(split_smiles)

    def tokens(self, text: str) -> list[str]:
        return self.split(text)

    @classmethod
    def build(cls, texts: Iterable[str], *, min_freq: int = 1, max_len: int = MAX_TOKENS) -> SmilesTokenizer:
        return super().build(texts, min_freq=min_freq, max_len=max_len)

    def words(self, text: str) -> list[str]:
        return self.split(text)

    def pieces(self, text: str) -> list[int]:
        return [self.index.get(t, 1) for t in self.split(text)]

    def spelled(self, ids: Iterable[int]) -> str:
        """The molecule of ``ids`` as the tokens write it: the SMILES (as :meth:`decode`)."""
        return self.decode(ids)

    def spell(self, smiles: str) -> str:
        """``smiles`` as the tokens write molecules: unchanged (a SELFIES tokenizer converts it)."""
        return smiles

    @property
    def alphabet(self) -> list[str]:
        """The chemical tokens of the vocabulary (the specials left out)."""
        return self.vocab[4:]

    def unknown(self, smiles: str) -> list[str]:
        """The tokens of ``smiles`` outside the vocabulary, each once, in order of appearance."""
        return list(dict.fromkeys(t for t in self.split(smiles) if t not in self.index))

    @property
    def has_stereo(self) -> bool:
        """Whether the vocabulary writes stereo: a chiral atom (``[C@@H]``) or a bond direction."""
        return any("@" in t or t in ("/", "\\") for t in self.alphabet)

    @property
    def has_isotopes(self) -> bool:
        """Whether the vocabulary writes isotope labels (``[13CH3]``, ``[2H]``)."""
        return any(t[:1] == "[" and t[1:2].isdigit() for t in self.alphabet)
