"""Reading a user's files: CSV, TSV, JSON Lines or Parquet tables, and .smi lists, local or ``s3://``."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow.csv as pa_csv
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq

from seqlab.errors import SeqlabError
from seqlab.storage import open_fs


def read_table(uri: str) -> pd.DataFrame:
    """Read a CSV or Parquet file from a local path or any pyarrow filesystem URI (``s3://``)."""
    try:
        fs, path = open_fs(uri)
        info = fs.get_file_info(path)
    except Exception as exc:  # pyarrow raises several types for bad URIs
        raise SeqlabError(f"cannot open {uri!r}: {exc}") from exc
    if info.type == pa_fs.FileType.NotFound:
        raise SeqlabError(f"data file {uri!r} does not exist (expected a .csv or .parquet file)")
    if path.endswith(".parquet") or info.type == pa_fs.FileType.Directory:
        return pq.read_table(path, filesystem=fs).to_pandas()
    if path.endswith((".jsonl", ".ndjson")):
        with fs.open_input_stream(path) as f:
            try:
                return pd.read_json(io.BytesIO(f.read()), lines=True, dtype=False)
            except ValueError as exc:
                raise SeqlabError(f"{uri}: not JSON Lines (one JSON object per line): {exc}") from exc
    if path.endswith((".csv", ".csv.gz", ".tsv")):
        opts = pa_csv.ParseOptions(delimiter="\t" if path.endswith(".tsv") else ",", newlines_in_values=True)
        with fs.open_input_stream(path) as f:
            return pa_csv.read_csv(f, parse_options=opts).to_pandas()
    raise SeqlabError(f"{uri!r}: unknown file type; expected .csv, .tsv, .jsonl or .parquet")


def read_smiles_lines(uri: str) -> pd.DataFrame:
    """``line`` and ``smiles`` of a .smi/.txt file: one SMILES a line, optionally whitespace and a name."""
    try:
        fs, path = open_fs(uri)
        with fs.open_input_stream(path) as f:
            data = f.read()
    except Exception as exc:  # pyarrow raises several types for bad URIs
        raise SeqlabError(f"cannot read {uri!r}: {exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SeqlabError(f"{uri} is not UTF-8 text ({exc}); expected one SMILES a line") from None
    rows = [(n, line.split(None, 1)[0]) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if rows and rows[0][1].lower() == "smiles":  # a header line
        rows = rows[1:]
    return pd.DataFrame(rows, columns=["line", "smiles"])
