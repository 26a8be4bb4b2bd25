"""Entity mentions with character spans: brat standoff files, sentence splitting, span tables.

A training row is one mention inside its sentence: ``text`` (the sentence), ``start``/``end``
(character offsets of the mention in that sentence), ``label`` and ``doc``. Mentions come from brat
standoff pairs (``doc.txt`` + ``doc.ann``, the format of CADEC and the BioNLP shared tasks) or from
a user table checked by :func:`check_span_table`.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from seqlab.errors import SeqlabError

T_FORM = "T<n>\\t<Type> <start> <end>[;<start> <end>...]\\t<text>"
E_FORM = "E<n>\\t<Type>:<trigger id> [<Role>:<id> ...]"
# Relations, attributes (A and the older M), normalisations, notes and equivalences carry no span.
_IGNORED = ("R", "A", "M", "N", "#", "*")


@dataclass(frozen=True)
class Mention:
    """One text-bound annotation: ``fragments`` are ``[start, end)`` in the document text."""

    id: str
    label: str
    fragments: tuple[tuple[int, int], ...]
    text: str
    kind: str = "entity"  # "trigger" when an event (E line) uses it as its trigger

    @property
    def start(self) -> int:
        return self.fragments[0][0]

    @property
    def end(self) -> int:
        return self.fragments[-1][1]


def _offsets(field: str) -> tuple[tuple[int, int], ...] | None:
    """``"10 15;20 25"`` as ``((10, 15), (20, 25))``, or None when it is not of that form."""
    frags = []
    for part in field.split(";"):
        bounds = part.split()
        if len(bounds) != 2 or not all(b.isascii() and b.isdigit() for b in bounds):
            return None
        frags.append((int(bounds[0]), int(bounds[1])))
    return tuple(frags)


def parse_ann(ann: str, text: str, *, where: str) -> list[Mention]:
    """The text-bound annotations of one ``.ann``, checked against ``text``, in document order."""
    found: dict[str, tuple[int, Mention]] = {}  # id -> (line number, mention)
    triggers: list[tuple[int, str, str]] = []  # (line number, event id, trigger id)
    # brat writes "\n"; a file saved on Windows may end its lines with "\r\n"
    for n, line in enumerate(ann.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip() or line.startswith(_IGNORED):
            continue
        fields = line.split("\t")
        if line.startswith("T"):
            head = fields[1].split(" ", 1) if len(fields) == 3 else []
            frags = _offsets(head[1]) if len(head) == 2 else None
            if frags is None or any(s >= e for s, e in frags):
                raise SeqlabError(f"{where}: line {n} reads {line!r}; expected {T_FORM} with start < end")
            tid, label, said = fields[0], head[0], fields[2]
            if tid in found:
                raise SeqlabError(f"{where}: line {n} ({tid}): id {tid} is already used on line "
                                  f"{found[tid][0]}; expected each T id once")
            bad = next(((s, e) for s, e in frags if e > len(text)), None)
            if bad:
                raise SeqlabError(f"{where}: line {n} ({tid}): offsets {bad[0]}-{bad[1]} run past the end of "
                                  f"the text ({len(text)} characters); the .ann does not match its .txt")
            # brat joins the fragments' texts with one space in the third field
            read = " ".join(text[s:e] for s, e in frags)
            if read != said:
                spans = ";".join(f"{s}-{e}" for s, e in frags)
                raise SeqlabError(f"{where}: line {n} ({tid}): offsets {spans} read {read!r} in the text, "
                                  f"but the annotation says {said!r}; the .ann does not match its .txt")
            found[tid] = (n, Mention(tid, label, frags, said))
        elif line.startswith("E"):
            trigger = fields[1].split()[0] if len(fields) >= 2 and fields[1].split() else ""
            if ":" not in trigger:
                raise SeqlabError(f"{where}: line {n} reads {line!r}; expected {E_FORM}")
            triggers.append((n, fields[0], trigger.split(":", 1)[1]))
        else:
            raise SeqlabError(f"{where}: line {n} reads {line!r}; expected a brat annotation line "
                              f"starting with T, E, {', '.join(_IGNORED)}")
    kinds = {}
    # checked after the loop: brat does not promise that a trigger's T line comes before its E line
    for n, eid, tid in triggers:
        if tid not in found:
            raise SeqlabError(f"{where}: line {n} ({eid}): trigger {tid!r} is not a T annotation of this "
                              f"file; expected {E_FORM} naming a T id")
        kinds[tid] = "trigger"
    mentions = [Mention(m.id, m.label, m.fragments, m.text, kinds.get(m.id, "entity")) for _, m in found.values()]
    return sorted(mentions, key=lambda m: (m.start, m.end))  # stable: ties keep file order


def _read(path: Path, what: str) -> str:
    try:
        # newline="" keeps "\r\n" as two characters: brat's offsets count them both
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        raise SeqlabError(f"{path} does not exist; expected {what}") from None
    except UnicodeDecodeError as exc:
        raise SeqlabError(f"{path} is not UTF-8 ({exc}); expected a UTF-8 {what}") from None


def read_brat(txt_path: str | Path, ann_path: str | Path | None = None) -> tuple[str, list[Mention]]:
    """The text and mentions of one brat document; ``ann_path`` defaults to the ``.ann`` beside it."""
    txt_path = Path(txt_path)
    ann_path = txt_path.with_suffix(".ann") if ann_path is None else Path(ann_path)
    text = _read(txt_path, f"the .txt that {ann_path.name} annotates")
    ann = _read(ann_path, f"the brat .ann of {txt_path.name}")
    return text, parse_ann(ann, text, where=str(ann_path))


def read_brat_dir(path: str | Path) -> dict[str, tuple[str, list[Mention]]]:
    """Every ``.ann`` under ``path`` (recursively) with its ``.txt``, keyed by sorted document id.

    The id is the path relative to ``path`` without its suffix (``"PMID-10064103"``, ``"train/doc1"``).
    """
    root = Path(path)
    if not root.is_dir():
        raise SeqlabError(f"{root} is not a directory; expected a folder of brat .txt/.ann pairs")
    anns = sorted(root.rglob("*.ann"))
    if not anns:
        raise SeqlabError(f"{root} has no .ann file; expected brat .txt/.ann pairs")
    docs = {}
    for ann in anns:
        txt = ann.with_suffix(".txt")
        if not txt.is_file():
            raise SeqlabError(f"{ann} has no {txt.name} beside it; every .ann needs the .txt it annotates")
        docs[ann.relative_to(root).with_suffix("").as_posix()] = read_brat(txt, ann)
    return dict(sorted(docs.items()))


# End of sentence: . ! ? (a run of them), closing quotes or brackets, then spaces before the next word.
_END = re.compile(r"([.!?]+)[\"'\u201d\u2019\u00bb)\]}]*\s+(?=(\S))")
_OPENERS = "\"'\u201c\u2018\u00ab([{"
# A point after one of these does not end a sentence; nor does one after a capital initial ("J. Smith").
_ABBREVIATION = re.compile(
    r"(?<!\w)(?:(?i:e\.g|i\.e|et al|figs?|vs|cf|approx|dr|mrs?|ms|no|ca|resp)|[A-Z])\.$")
_LINE = re.compile(r"[^\r\n]+")


def split_sentences(text: str, *, keep_together: list[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``, without surrounding whitespace.

    Splits at line breaks and after . ! ? followed by a capital, digit, quote or bracket, except after
    common abbreviations and initials. No sentence boundary falls inside a ``keep_together`` interval:
    the sentences it overlaps become one.
    """
    cuts = []  # (start, end) of the pieces between boundaries, whitespace included
    for line in _LINE.finditer(text):
        start = line.start()
        for m in _END.finditer(line.group()):
            nxt = m.group(2)
            if not (nxt.isupper() or nxt.isdigit() or nxt in _OPENERS):
                continue
            if m.group(1) == "." and _ABBREVIATION.search(line.group()[: m.end(1)]):
                continue
            cuts.append((start, line.start() + m.end()))
            start = line.start() + m.end()
        cuts.append((start, line.end()))
    spans = []
    for s, e in cuts:
        piece = text[s:e]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((s + lead, s + len(piece.rstrip())))
    # Sweep over sentences and intervals by start, merging whatever overlaps: an interval that
    # crosses a boundary joins the sentences on both sides of it.
    merged: list[list[int]] = []
    for s, e in sorted([*spans, *((a, z) for a, z in keep_together if a < z)]):
        if merged and s < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def mention_rows(doc: str, text: str, mentions: list[Mention]) -> list[dict]:
    """One row per mention, in document order, with offsets relative to the sentence that holds it."""
    ordered = sorted(mentions, key=lambda m: (m.start, m.end))
    sentences = split_sentences(text, keep_together=[(m.start, m.end) for m in ordered])
    starts = [s for s, _ in sentences]
    rows = []
    for m in ordered:
        # the merge in split_sentences puts every mention's [start, end) inside one sentence
        s, e = sentences[bisect.bisect_right(starts, m.start) - 1]
        sentence = text[s:e]
        rows.append({
            "text": sentence, "start": m.start - s, "end": m.end - s, "label": m.label, "doc": doc,
            "mention": sentence[m.start - s: m.end - s], "kind": m.kind,
            "fragments": ";".join(f"{a - s}-{b - s}" for a, b in m.fragments), "id": m.id,
        })
    return rows


SPAN_COLUMNS = ("text", "start", "end", "label")


def check_span_table(df: pd.DataFrame, *, where: str) -> pd.DataFrame:
    """A user's span table as ``text, start, end, label, doc, mention``, every row checked.

    Rows are named by their 1-based position among the data rows; ``doc`` defaults to ``row<n>``.
    """
    missing = [c for c in SPAN_COLUMNS if c not in df.columns]
    if missing:
        raise SeqlabError(f"{where} has no column {missing[0]!r}; columns are {list(df.columns)}; "
                          f"expected {', '.join(SPAN_COLUMNS)} (and optionally doc)")
    df = df.reset_index(drop=True)
    for col in [*("text", "label"), *(["doc"] if "doc" in df.columns else [])]:
        empty = df[col].isna()
        if empty.any():
            n = int(empty.to_numpy().argmax())
            raise SeqlabError(f"{where}: row {n + 1} has no {col}; expected a value in every row")
    bounds = {}
    for col in ("start", "end"):
        # a CSV column with one empty cell arrives as floats (3.0); whole numbers are fine
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() | (num % 1 != 0)
        if bad.any():
            n = int(bad.to_numpy().argmax())
            raise SeqlabError(f"{where}: row {n + 1} has {col}={df[col].tolist()[n]!r}; expected a whole number")
        bounds[col] = num.astype("int64")
    text = df["text"].astype(str)
    start, end, length = bounds["start"], bounds["end"], text.str.len()
    bad = ~((start >= 0) & (start < end) & (end <= length))
    if bad.any():
        n = int(bad.to_numpy().argmax())
        raise SeqlabError(f"{where}: row {n + 1} has start={start[n]}, end={end[n]} but its text has "
                          f"{length[n]} characters; expected 0 <= start < end <= {length[n]}")
    doc = df["doc"].astype(str) if "doc" in df.columns else pd.Series([f"row{i + 1}" for i in range(len(df))])
    mention = [t[s:e] for t, s, e in zip(text, start, end)]
    return pd.DataFrame({"text": text, "start": start, "end": end, "label": df["label"].astype(str),
                         "doc": doc, "mention": mention})
