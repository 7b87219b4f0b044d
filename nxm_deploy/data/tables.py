"""Read a user's own table of labelled text, offline: CSV, TSV, JSON, JSON Lines or Parquet.

    table = read_table(Path("reviews.csv"))
    table.columns, table.rows[0], table.where(0, "label")   # "reviews.csv row 1, column 'label'"

Rows are dicts in file order; ``where`` names a row (1-based, the header not counted) and a column
for one-line errors. CSV and JSON Lines are read with the standard library so that every value keeps
its row; TSV files are read as GLUE writes them (tab-separated, no quoting: a ``"`` is text); Parquet
through ``pyarrow`` (what ``datasets`` stores its tables in). A data set on the hub is read by
``datasets.load_dataset`` (:func:`read_hub`).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nxm_deploy.errors import DataError

__all__ = ["FORMATS", "Table", "find_data_files", "read_hub", "read_table"]

FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".parquet": "parquet", ".pq": "parquet"}  # fmt: skip
"""File suffix -> format."""
_TRAIN_NAMES = ("train",)
_VALIDATION_NAMES = ("validation", "dev", "valid", "val")


@dataclass(frozen=True)
class Table:
    """Rows of one file (or one hub split): ``source`` names it in errors."""

    source: str
    format: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]

    def where(self, row: int, column: str | None = None) -> str:
        """``<source> row <n>[, column '<c>']`` for the row at index ``row``."""
        return f"{self.source} row {row + 1}" + (f", column {column!r}" if column else "")


def read_table(path: Path) -> Table:
    """The rows of ``path``, by its suffix; :class:`DataError` for an unknown suffix, an empty file
    or a line that does not parse."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise DataError(f"{path}: unknown data format {path.suffix!r}; use one of {known}")
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    reader = {"csv": _read_delimited, "tsv": _read_delimited, "json": _read_json,
              "jsonl": _read_jsonl, "parquet": _read_parquet}[fmt]  # fmt: skip
    columns, rows = reader(path, fmt)
    if not rows:
        raise DataError(f"{path}: the file holds no rows" + (" (only a header)" if columns else ""))
    return Table(str(path), fmt, tuple(columns), rows)


def _read_delimited(path: Path, fmt: str) -> tuple[list[str], list[dict[str, Any]]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        if fmt == "tsv":
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.reader(f)
        lines = [line for line in reader if line]
    if not lines:
        raise DataError(f"{path}: the file is empty")
    header, rows = lines[0], []
    for i, fields in enumerate(lines[1:]):
        if len(fields) > len(header):
            raise DataError(f"{path} row {i + 1}: {len(fields)} fields, the header has {len(header)}")
        rows.append({name: (fields[j] if j < len(fields) else None) for j, name in enumerate(header)})
    return header, rows


def _read_json(path: Path, _fmt: str) -> tuple[list[str], list[dict[str, Any]]]:
    try:
        body = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); one object per line needs .jsonl") from exc
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        body = body["data"]
    elif isinstance(body, dict) and body and all(isinstance(v, list) for v in body.values()):
        n = {len(v) for v in body.values()}
        if len(n) != 1:
            raise DataError(f"{path}: its columns differ in length ({sorted(n)})")
        body = [dict(zip(body, values, strict=True)) for values in zip(*body.values(), strict=True)]
    if not isinstance(body, list):
        raise DataError(f"{path}: expected a list of objects, {{'data': [...]}} or an object of columns")
    return _records(path, body)


def _read_jsonl(path: Path, _fmt: str) -> tuple[list[str], list[dict[str, Any]]]:
    records = []
    with path.open(encoding="utf-8-sig") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                raise DataError(f"{path} row {len(records) + 1}: not a JSON object ({exc})") from exc
    return _records(path, records)


def _records(path: Path, records: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    columns: dict[str, None] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataError(f"{path} row {i + 1}: not a JSON object but {type(rec).__name__}")
        columns.update(dict.fromkeys(rec))
    return list(columns), records


def _read_parquet(path: Path, _fmt: str) -> tuple[list[str], list[dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    return list(table.column_names), table.to_pylist()


def find_data_files(folder: Path) -> tuple[Path, Path | None]:
    """(train file, validation file or None) in ``folder``: ``train.*`` and ``validation.*`` (or
    ``dev``, ``valid``, ``val``), else its one data file."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FORMATS)
    by_stem = {p.stem.lower(): p for p in files}
    train = next((by_stem[n] for n in _TRAIN_NAMES if n in by_stem), None)
    if train is None:
        if len(files) != 1:
            found = ", ".join(p.name for p in files) or "none"
            raise DataError(
                f"{folder}: cannot tell the training file (data files: {found}); name it train.csv "
                "(.tsv, .json, .jsonl, .parquet) or pass the file itself"
            )
        return files[0], None
    validation = next((by_stem[n] for n in _VALIDATION_NAMES if n in by_stem), None)
    return train, validation


def read_hub(name: str, config: str | None) -> tuple[Table, Table | None]:
    """(train, validation or None) of a hub data set; ClassLabel ids become their names."""
    where = f"hub data set {name}" + (f" ({config})" if config else "")
    try:
        import datasets

        ds = datasets.load_dataset(name, config)
    except ImportError as exc:
        raise DataError(f"cannot load {where}: the 'datasets' package is not installed") from exc
    except (OSError, ValueError, ConnectionError, datasets.exceptions.DatasetsError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError.naming(
            "cannot load {where}: {reason}; offline, pass {0} with a local file",
            "source",
            where=where,
            reason=reason,
        ) from exc
    if "train" not in ds:
        raise DataError(f"{where} has no train split (splits: {', '.join(ds)})")
    val = next((s for s in ("validation", "dev", "test") if s in ds), None)
    return _hub_table(ds["train"], f"hub:{name}/train"), (
        _hub_table(ds[val], f"hub:{name}/{val}") if val else None
    )


def _hub_table(split: Any, source: str) -> Table:
    rows = split.to_list()
    for column, feature in split.features.items():
        names = getattr(feature, "names", None)  # a ClassLabel: ids -> names (-1: no label)
        if names:
            for row in rows:
                v = row[column]
                row[column] = names[v] if isinstance(v, int) and 0 <= v < len(names) else None
    if not rows:
        raise DataError(f"{source} holds no rows")
    return Table(source, "hub", tuple(split.column_names), rows)
