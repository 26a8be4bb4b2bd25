"""SELFIES tokenizer: molecules as SELFIES symbols, read from SMILES and written back as SMILES.

SELFIES (Krenn et al., 'Self-referencing embedded strings (SELFIES)', Mach. Learn.: Sci. Technol.
2020) is a grammar in which every sequence of symbols is a molecule, so a model that writes symbols
cannot write an invalid one (a sequence that places no atom, e.g. a lone ``[Branch1]``, decodes to
``""``). The data stay canonical SMILES: ``encode`` converts a SMILES (``selfies.encoder``) and
``decode`` gives a SMILES (``selfies.decoder``), so metrics, novelty and Serve see SMILES as with
:mod:`seqlab.tokenizers.smiles`. Converting costs 0.3-0.5 ms a molecule on one core, so ``build`` and
``encode_many`` spread it over a process pool above ``POOL_MIN`` molecules, as canonicalising does.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import partial

import numpy as np
import selfies

from seqlab.data.molecules import map_chunks
from seqlab.errors import SeqlabError
from seqlab.tokenizers import BOS, EOS, PAD, UNK, ragged
from seqlab.tokenizers.smiles import MAX_TOKENS, SmilesTokenizer

ISOTOPE = re.compile(r"\[[-=#/\\]*\d")  # [13CH3], [=13CH2]: a mass number before the element


def split_selfies(smiles: str) -> list[str]:
    """The SELFIES symbols of ``smiles``; a molecule SELFIES cannot write (an atom above the bonds its
    grammar allows, e.g. a hypervalent iodine) is a :class:`SeqlabError` saying why, in one line."""
    try:
        return list(selfies.split_selfies(selfies.encoder(smiles)))
    except selfies.EncoderError as exc:
        # selfies' message: what failed, the SMILES, and for a bond count the atoms, as "[[IH0] with 5 ...]"
        what, *rest = [line.strip() for line in str(exc).splitlines() if line.strip()] or ["refused"]
        detail = f" ({rest[-1][1:-1]})" if rest and rest[-1].startswith("[") else ""
        raise SeqlabError(f"SELFIES cannot write SMILES {smiles!r}: {what}{detail}") from None


def _count(chunk: list[str]) -> Counter:
    return Counter(t for s in chunk for t in split_selfies(s))


def _encode(index: dict[str, int], chunk: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return ragged([[2, *(index.get(t, 1) for t in split_selfies(s)), 3] for s in chunk])


class SelfiesTokenizer(SmilesTokenizer):
    """SMILES to SELFIES symbol ids for molecule models: ``<pad>``=0, ``<unk>``=1, ``<bos>``=2, ``<eos>``=3.

    As :class:`seqlab.tokenizers.smiles.SmilesTokenizer`, with SELFIES symbols (``[C]``, ``[=O]``,
    ``[Branch1]``, ``[Ring1]``) for tokens: ``encode`` gives ``<bos>`` + the symbols + ``<eos>`` and
    never cuts; ``max_len`` is the most symbols a molecule may have; symbols outside the vocabulary
    become ``<unk>`` (``unknown`` names them; a molecule SELFIES cannot write is a :class:`SeqlabError`);
    ``decode`` gives the SMILES of the symbols (not canonical).
    """

    kind = "selfies"
    split = staticmethod(split_selfies)

    @classmethod
    def build(cls, texts: Iterable[str], *, min_freq: int = 1, max_len: int = MAX_TOKENS) -> SelfiesTokenizer:
        counts = Counter()
        for part in map_chunks(_count, texts):
            counts.update(part)
        symbols = sorted(t for t, n in counts.items() if n >= min_freq)  # sorted: stable ids
        return cls([PAD, UNK, BOS, EOS, *symbols], max_len=max_len)

    def encode_many(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = map_chunks(partial(_encode, self.index), texts)
        lengths = np.concatenate([np.diff(offsets) for _, offsets in parts])
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return np.concatenate([ids for ids, _ in parts]), offsets

    def spelled(self, ids: Iterable[int]) -> str:
        """The SELFIES string of ``ids`` (stopping at ``<eos>``, specials dropped), not converted."""
        return super().decode(ids)

    def spell(self, smiles: str) -> str | None:
        """``smiles`` in SELFIES, or None where SELFIES cannot write it."""
        try:
            return selfies.encoder(smiles)
        except selfies.EncoderError:
            return None

    def decode(self, ids: Iterable[int]) -> str:
        """The SMILES of ``ids`` (stopping at ``<eos>``, specials dropped): a molecule for any symbols, ``""`` for none."""
        return selfies.decoder(self.spelled(ids))

    @property
    def has_stereo(self) -> bool:
        """Whether the vocabulary writes stereo: a chiral atom (``[C@@H1]``) or a bond direction (``[/C]``)."""
        return any("@" in t or "/" in t or "\\" in t for t in self.alphabet)

    @property
    def has_isotopes(self) -> bool:
        """Whether the vocabulary writes isotope labels (``[13CH3]``, ``[2H]``)."""
        return any(ISOTOPE.match(t) for t in self.alphabet)
