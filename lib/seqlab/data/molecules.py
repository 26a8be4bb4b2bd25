"""RDKit canonicalisation of datasets, with RDKit's own reasons for the molecules it refuses.

Canonicalising is the slow part of preparing molecule data (about 85 µs a molecule); above
``POOL_MIN`` molecules it is spread over a process pool (:func:`map_chunks`, which the SELFIES
tokenizer's conversion uses too). What was refused is counted by kind on the dataset card
(:func:`summarise_invalid`).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from seqlab.data.tables import read_smiles_lines, read_table
from seqlab.errors import SeqlabError
from seqlab.tokenizers.smiles import MAX_TOKENS, split_smiles

# Below this many SMILES a process pool costs more than it saves.
POOL_MIN = 50_000
MOLECULE = "molecule"  # the one label of molecule data, so that the shared split and card code applies



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


def map_chunks(fn: Callable[[list], object], items: Sequence, *, processes: int | None = None) -> list:
    """``fn`` of chunks of ``items``, in order: one chunk (this process) below ``POOL_MIN`` items, else
    chunks over a fork pool of one process per usable core (``processes``)."""
    items = list(items)
    processes = processes or _processes()
    if len(items) < POOL_MIN or processes < 2 or multiprocessing.current_process().daemon:
        return [fn(items)]
    # chunks, not single items, so the pickling per task stays small next to the work
    size = max(1_000, len(items) // (processes * 16))
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        out = list(pool.imap(fn, chunks))
        # let the workers exit on their own: the pool's exit SIGTERMs live ones, and a fork
        # of a process with Ray's signal handlers prints a stack trace for that
        pool.close()
        pool.join()
    return out


def canonicalise(smiles: Sequence[str], *, processes: int | None = None
                 ) -> tuple[list[str | None], list[str | None]]:
    """RDKit-canonical SMILES of each input (``None`` if invalid) and why not (RDKit's message, else ``None``).

    Quiet: RDKit's log is captured, not printed. Above ``POOL_MIN`` inputs the work is spread
    over a fork pool of one process per usable core (RDKit takes about 85 µs a molecule).
    """
    pairs = [p for part in map_chunks(_canonical_chunk, smiles, processes=processes) for p in part]
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


def molecule_rows(uri: str, text_column: str | None = None, label_column: str | None = None
                  ) -> tuple[pd.DataFrame, list[tuple[str, str, str]], int, str]:
    """Canonical molecules of a user file, what was refused, how many repeats were left out, the SMILES column.

    The file is a table (CSV, TSV, JSONL, Parquet) whose SMILES are in ``text_column`` or else a
    column named ``smiles`` (any case), or a .smi/.txt file of one SMILES a line. Returns ``text``
    (RDKit-canonical) and ``label`` (``label_column``, else "molecule") of the valid rows, first
    occurrence kept; ``(where, smiles, reason)`` of each refused row; the count of repeats; the column
    read. One line on stdout reports refused rows.
    """
    file = uri.rstrip("/").split("/")[-1]
    if uri.lower().endswith((".smi", ".txt")):
        if label_column:
            raise SeqlabError(f"{uri} is a list of SMILES without columns; a label column needs a CSV, TSV, "
                              "JSONL or Parquet file")
        table, column, unit = read_smiles_lines(uri), "smiles", "line"  # column: of the frame read
        rows = table["line"].to_numpy()
    else:
        table, unit = read_table(uri), "row"
        rows = np.arange(1, len(table) + 1)
        column = text_column or next((c for c in table.columns if str(c).lower() == "smiles"), None)
        if column is None:
            raise SeqlabError(f"{uri} has no SMILES column; columns are {list(table.columns)} (expected a column "
                              "named 'smiles', or name one with --text-column)")
        missing = [c for c in (column, label_column) if c and c not in table.columns]
        if missing:
            raise SeqlabError(f"{uri} has no column {missing[0]!r}; columns are {list(table.columns)}")
    smiles = table[column].astype("string").str.strip().fillna("").tolist()
    label = (table[label_column].astype("string").str.strip() if label_column
             else pd.Series(MOLECULE, index=table.index, dtype="string"))
    canonical, reasons = canonical_molecules(smiles)
    for i in np.flatnonzero(label.fillna("").eq("").to_numpy()):  # only with a label column
        if canonical[i] is not None:  # a molecule without its label cannot be used either
            canonical[i], reasons[i] = None, f"no value in column {label_column!r}"
    refused = [(f"{file} {unit} {r}", s, why) for r, s, c, why in zip(rows, smiles, canonical, reasons) if c is None]
    if refused:
        shown = "; ".join(f"{where.split(' ', 1)[1]}: {why}" for where, _, why in refused[:3])
        print(f"[seqlab] {uri}: {len(refused):,} of {len(smiles):,} SMILES invalid or refused, skipped "
              f"({shown}{'; ...' if len(refused) > 3 else ''})", flush=True)
    df = pd.DataFrame({"text": pd.array(canonical, dtype="string"), "label": label.to_numpy()}).dropna(subset=["text"])
    repeats = df["text"].duplicated()
    return df[~repeats].reset_index(drop=True), refused, int(repeats.sum()), column
