"""SMILES: a lossless regex tokenizer and RDKit canonicalisation with RDKit's own reasons for failures.

Tokens follow Schwaller et al., 'Molecular Transformer' (ACS Central Science 2019): bracket atoms
(``[nH]``, ``[C@@H]``, ``[N+]``) and ``Cl``/``Br`` stay whole, and so do ``%10`` ring closures.
A string with a character that no token covers is refused (:class:`SeqlabError`), never shortened:
tokens always join back to the input.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence

from seqlab.errors import SeqlabError
from seqlab.tokenizer import CharTokenizer

# Schwaller et al.'s pattern, plus %(123): RDKit writes ring closures above 99 that way.
SMILES_RE = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%\([0-9]+\)|%[0-9]{2}|[0-9])"
)
# Most tokens in a SMILES that data preparation keeps (MOSES has at most 57 characters);
# longer molecules are refused there and counted on the card, so no tokenizer has to cut one.
MAX_TOKENS = 256
# Below this many SMILES a process pool costs more than it saves.
POOL_MIN = 50_000


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
        return split_smiles(text)

    @classmethod
    def build(cls, texts: Iterable[str], *, min_freq: int = 1, max_len: int = MAX_TOKENS) -> SmilesTokenizer:
        return super().build(texts, min_freq=min_freq, max_len=max_len)

    def words(self, text: str) -> list[str]:
        return split_smiles(text)

    def pieces(self, text: str) -> list[int]:
        return [self.index.get(t, 1) for t in split_smiles(text)]


# --- canonicalisation ---------------------------------------------------------------------------

def _canonical_one(smiles: str) -> tuple[str | None, str | None]:
    from rdkit import Chem

    if not isinstance(smiles, str) or not smiles.strip():
        return None, "empty SMILES"
    if any(c.isspace() for c in smiles):  # RDKit would read the part before the space and drop the rest
        return None, "whitespace inside the SMILES"
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:  # rare: only then is it parsed again to capture why
        from seqlab.chem import parse_error

        return None, parse_error(smiles)
    return Chem.MolToSmiles(mol), None


def _canonical_chunk(chunk: list[str]) -> list[tuple[str | None, str | None]]:
    from rdkit import rdBase

    with rdBase.BlockLogs():  # no RDKit warnings or errors on stderr
        return [_canonical_one(s) for s in chunk]


def _processes() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use, not the host's
    except AttributeError:
        return os.cpu_count() or 1


def canonicalise(smiles: Sequence[str], *, processes: int | None = None
                 ) -> tuple[list[str | None], list[str | None]]:
    """RDKit-canonical SMILES of each input (``None`` if invalid) and why not (RDKit's message, else ``None``).

    Quiet: RDKit's log is captured, not printed. Above ``POOL_MIN`` inputs the work is spread
    over a fork pool of one process per usable core (RDKit takes about 85 µs a molecule).
    """
    smiles = list(smiles)
    processes = processes or _processes()
    if len(smiles) < POOL_MIN or processes < 2 or multiprocessing.current_process().daemon:
        pairs = _canonical_chunk(smiles)
    else:
        # chunks, not single items, so the pickling per task stays small next to the work
        size = max(1_000, len(smiles) // (processes * 16))
        chunks = [smiles[i:i + size] for i in range(0, len(smiles), size)]
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pairs = [p for part in pool.imap(_canonical_chunk, chunks) for p in part]
            # let the workers exit on their own: the pool's exit SIGTERMs live ones, and a fork
            # of a process with Ray's signal handlers prints a stack trace for that
            pool.close()
            pool.join()
    return [c for c, _ in pairs], [r for _, r in pairs]


_KIND_RES = [  # what varies from molecule to molecule inside RDKit's messages
    (re.compile(r" for input: '.*'$"), ""),
    (re.compile(r" \(around position \d+\)$"), ""),
    (re.compile(r"(syntax error while parsing): .*$"), r"\1"),
    (re.compile(r"atom # \d+"), "atom # N"),
    (re.compile(r"(Unkekulized atoms:)[\d ]+$"), r"\1 ..."),
    (re.compile(r"between atom \d+ and atom \d+"), "between two atoms"),
    (re.compile(r"ring closure \d+"), "a ring closure"),
    (re.compile(r"^SMILES .* has ('.*') at position \d+, (which no SMILES token covers)$"), r"\1, \2"),
]


def reason_kind(reason: str) -> str:
    """``reason`` without what names one molecule (its SMILES, atom numbers), for counting by kind."""
    for pattern, repl in _KIND_RES:
        reason = pattern.sub(repl, reason)
    return reason


def canonical_molecules(smiles: Sequence[str], *, max_tokens: int = MAX_TOKENS
                        ) -> tuple[list[str | None], list[str | None]]:
    """:func:`canonicalise`, also refusing canonical SMILES that do not split into at most ``max_tokens`` tokens."""
    canonical, reasons = canonicalise(smiles)
    for i, c in enumerate(canonical):
        if c is None:
            continue
        try:
            n = len(split_smiles(c))
        except SeqlabError as exc:
            canonical[i], reasons[i] = None, str(exc)
            continue
        if n > max_tokens:
            canonical[i], reasons[i] = None, f"more than {max_tokens} SMILES tokens"
    return canonical, reasons


def summarise_invalid(rows: Sequence[tuple[str, str, str]], examples: int = 5) -> dict:
    """The card's ``invalid`` field from ``(where, smiles, reason)`` of each refused row: the count, the
    count of each kind of reason (most frequent first) and the first few rows."""
    kinds = Counter(reason_kind(r) for *_, r in rows)
    return {"count": len(rows), "reasons": dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
            "examples": [{"where": w, "smiles": s, "reason": r} for w, s, r in rows[:examples]]}


def timed_canonical(smiles: Sequence[str], label: str) -> tuple[list[str | None], list[str | None]]:
    """:func:`canonical_molecules` with one progress line (how many, how long), for the slow built-in files."""
    start = time.perf_counter()
    canonical, reasons = canonical_molecules(smiles)
    bad = sum(c is None for c in canonical)
    print(f"[seqlab] canonicalised {label}: {len(canonical):,} SMILES, {bad:,} invalid or refused, "
          f"{time.perf_counter() - start:.1f} s", flush=True)
    return canonical, reasons
