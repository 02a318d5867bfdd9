"""Users' own text files: CSV, TSV and JSON Lines with a text and a label, or plain text.

:func:`load_text_file` reads ``.csv``/``.tsv`` (a header row names the columns),
``.jsonl`` (one JSON object per line) and ``.txt`` (one text per line, no labels: for
language models). Every problem is reported with the line it is on.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..textdata import TextData

__all__ = ["FORMATS", "load_text_file"]

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "txt"}


def _lines(text: str) -> list[str]:
    """Lines split at LF, CRLF or CR only (not at the other characters str.splitlines uses)."""
    return re.split(r"\r\n|\r|\n", text)


def _decode(raw: bytes, path: Path, encoding: str) -> str:
    try:
        text = raw.decode("utf-8-sig" if encoding.lower().replace("_", "-") in
                          ("utf-8", "utf8") else encoding)
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}; give a Python codec name such as "
                         "'utf-8' or 'cp1252'") from None
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise InputError(f"{path}: line {line}, byte {col}: bytes {raw[e.start:e.end]!r} are "
                         f"not valid {encoding} text; save the file as UTF-8 or pass its "
                         f"encoding (e.g. encoding='cp1252')") from None
    if not text.strip():
        raise InputError(f"{path} is empty; give one text per line (.txt) or a header row "
                         "and rows of text and label (.csv/.tsv), or JSON objects (.jsonl)")
    return text


def _label_text(value: Any, where: str, label_column: str) -> str:
    """A label as a string: strings as they are, whole numbers and booleans written out."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        if not value.strip():
            raise InputError(f"{where}: the label ({label_column!r}) is empty")
        return value.strip()
    raise InputError(f"{where}: the label ({label_column!r}) must be a string or a whole number, "
                     f"got {json.dumps(value)[:40]}")


def csv_rows(reader: Any, path: Any) -> Iterator[tuple[int, list[str]]]:
    """``(line, row)`` of a ``csv.reader`` past its header, blank rows skipped; ``line`` is
    where the row starts (a quoted field may span lines). A malformed row is an InputError."""
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise InputError(f"{path}: line {reader.line_num}: {e}") from None
        if row and any(c.strip() for c in row):
            yield line, row


def _rows_csv(text: str, path: Path, delimiter: str, text_column: str,
              label_column: str | None) -> list[tuple[int, str, str | None]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error as e:
        raise InputError(f"{path}: line 1: {e}") from None
    header = [h.strip() for h in header]
    wanted = [c for c in (text_column, label_column) if c is not None]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise InputError(f"{path}: line 1 (header): no column {missing[0]!r}; the columns are "
                         f"{header}. Pass text_column=/label_column= (--text-column/"
                         "--label-column) to name the right ones")
    ti = header.index(text_column)
    li = header.index(label_column) if label_column is not None else None
    rows = []
    for line, row in csv_rows(reader, path):
        if ti >= len(row) or not row[ti].strip():
            raise InputError(f"{path}: line {line}: the text ({text_column!r}) is empty")
        label = None
        if li is not None:
            if li >= len(row) or not row[li].strip():
                raise InputError(f"{path}: line {line}: the label ({label_column!r}) is missing")
            label = row[li].strip()
        rows.append((line, row[ti], label))
    return rows


def _rows_jsonl(text: str, path: Path, text_column: str,
                label_column: str | None) -> list[tuple[int, str, str | None]]:
    rows = []
    for line, raw in enumerate(_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: line {line}: not valid JSON ({e.msg}); each line must "
                             "be one JSON object") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}: line {line}: expected a JSON object like "
                             f'{{"{text_column}": "...", "{label_column}": "..."}}, got '
                             f"{type(obj).__name__}")
        if text_column not in obj:
            raise InputError(f"{path}: line {line}: no key {text_column!r}; its keys are "
                             f"{sorted(obj)}. Pass text_column= to name the right one")
        value = obj[text_column]
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{path}: line {line}: the text ({text_column!r}) is empty or not "
                             "a string")
        label = None
        if label_column is not None:
            if obj.get(label_column) is None:
                raise InputError(f"{path}: line {line}: the label ({label_column!r}) is missing")
            label = _label_text(obj[label_column], f"{path}: line {line}", label_column)
        rows.append((line, value, label))
    return rows


def _class_order(labels: Sequence[str]) -> list[str]:
    """Distinct labels, numerically when all are whole numbers, else alphabetically."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=int)
    except ValueError:
        return sorted(distinct)


def load_text_file(path: str | os.PathLike[str], *, text_column: str = "text",
                   label_column: str | None = "label", classes: Sequence[str] | None = None,
                   format: str | None = None, encoding: str = "utf-8") -> TextData:
    """Read a text data file of one's own.

    Parameters
    ----------
    path : path
        A ``.csv``, ``.tsv``, ``.jsonl`` (``.ndjson``) or ``.txt`` file.
    text_column, label_column : str
        Column names (CSV/TSV header) or keys (JSON Lines). ``label_column=None`` reads texts
        only. Ignored for ``.txt``.
    classes : sequence of str, optional
        The accepted labels, in label order; a label outside them is an error. Default: the
        distinct labels found, in numeric order when all are whole numbers, else sorted.
    format : {"csv", "tsv", "jsonl", "txt"}, optional
        Overrides the format implied by the file name.
    encoding : str
        The text encoding (default UTF-8, a byte-order mark is allowed).

    Returns
    -------
    TextData
        ``labels`` (``None`` for ``.txt`` or ``label_column=None``), ``classes``, and
        ``extras["line_numbers"]``: the line each text came from.

    Raises
    ------
    InputError
        Naming the line: missing column, empty text, missing or unknown label, bad JSON,
        undecodable bytes; or an empty file, an unknown format, a missing file.

    Examples
    --------
    >>> data = load_text_file("reviews.csv", text_column="review", label_column="stars")
    ... # doctest: +SKIP
    >>> data.classes  # doctest: +SKIP
    ['1', '2', '3', '4', '5']
    """
    p = Path(path).expanduser()
    if format is not None and format not in set(FORMATS.values()):
        raise InputError(f"unknown format {format!r}; accepted: 'csv', 'tsv', 'jsonl', 'txt'")
    fmt = format or FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise InputError(f"{p}: cannot tell the file format from {p.suffix or 'no suffix'!r}; "
                         f"accepted: {', '.join(sorted(FORMATS))} (or format='csv'|'tsv'|"
                         f"'jsonl'|'txt')")
    if not p.is_file():
        raise InputError(f"{p} does not exist or is not a file")
    text = _decode(p.read_bytes(), p, encoding)
    if fmt == "txt":
        lines = [(n, t) for n, t in enumerate(_lines(text), start=1) if t.strip()]
        return TextData([t for _, t in lines], None, [],
                        {"line_numbers": np.array([n for n, _ in lines], np.int64),
                         "path": str(p), "format": fmt})
    if fmt == "jsonl":
        rows = _rows_jsonl(text, p, text_column, label_column)
    else:
        rows = _rows_csv(text, p, "," if fmt == "csv" else "\t", text_column, label_column)
    if not rows:
        raise InputError(f"{p} has a header but no rows of data")
    extras = {"line_numbers": np.array([r[0] for r in rows], np.int64), "path": str(p),
              "format": fmt}
    if label_column is None:
        return TextData([r[1] for r in rows], None, [], extras)
    labels = [str(r[2]) for r in rows]
    if classes is not None:
        names = [str(c) for c in classes]
        if len(set(names)) != len(names) or not names:
            raise InputError(f"classes must be distinct names, got {list(classes)}")
        index = {c: k for k, c in enumerate(names)}
        for line, _, label in rows:
            if label not in index:
                raise InputError(f"{p}: line {line}: unknown label {label!r}; accepted: "
                                 f"{names}")
    else:
        names = _class_order(labels)
        index = {c: k for k, c in enumerate(names)}
    return TextData([r[1] for r in rows], np.array([index[x] for x in labels], np.int64),
                    names, extras)
