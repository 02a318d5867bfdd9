"""Documents of a corpus file, read as a stream (the first pass of ``lstmlens index``).

Formats: ``.txt`` (one document per line), ``.csv``/``.tsv`` (a header row names the text
column), ``.jsonl`` (one JSON object per line). Nothing is held but the current document, so
a corpus of any size is read in bounded memory. An empty document is refused with its line.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from .datasets.userdata import FORMATS, csv_rows
from .errors import InputError

ACCEPTED = "accepted: .txt (one document per line), .csv/.tsv (header row), .jsonl"


def data_format(path: Path, format: str | None = None) -> str:
    """The format of a corpus file, from ``format`` or its suffix."""
    if format is not None and format not in set(FORMATS.values()):
        raise InputError(f"unknown format {format!r}; accepted: 'csv', 'tsv', 'jsonl', 'txt'")
    fmt = format or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: cannot tell the format from {path.suffix or 'no suffix'!r}; "
                         f"{ACCEPTED}")
    if not path.is_file():
        raise InputError(f"--data {path} does not exist or is not a file")
    return fmt


def file_sha256(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def _empty(path: Path, line: int) -> InputError:
    return InputError(f"{path}: line {line}: the document is empty; every document needs at "
                      "least one token (remove the line or give it text)")


def _txt(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    with open(path, encoding=encoding, newline="") as f:
        pending_blank: int | None = None
        for n, raw in enumerate(f, start=1):
            text = raw.rstrip("\r\n")
            if not text.strip():
                pending_blank = pending_blank or n  # refused unless only blanks follow
                continue
            if pending_blank is not None:
                raise _empty(path, pending_blank)
            yield n, text


def _jsonl(path: Path, encoding: str, column: str) -> Iterator[tuple[int, str]]:
    with open(path, encoding=encoding) as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}: line {n}: not valid JSON ({e.msg}); each line must "
                                 "be one JSON object") from None
            if not isinstance(obj, dict) or column not in obj:
                raise InputError(f"{path}: line {n}: expected a JSON object with the key "
                                 f"{column!r} (pass --text-column to name another)")
            value = obj[column]
            if not isinstance(value, str):
                raise InputError(f"{path}: line {n}: {column!r} must be a string")
            if not value.strip():
                raise _empty(path, n)
            yield n, value


def _csv(path: Path, encoding: str, column: str, delimiter: str) -> Iterator[tuple[int, str]]:
    with open(path, encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise InputError(f"{path} is empty; give a header row and rows of text") from None
        if column not in header:
            raise InputError(f"{path}: line 1 (header): no column {column!r}; the columns are "
                             f"{header} (pass --text-column to name the right one)")
        col = header.index(column)
        for line, row in csv_rows(reader, path):
            if col >= len(row) or not row[col].strip():
                raise _empty(path, line)
            yield line, row[col]


def iter_documents(path: str | os.PathLike, *, format: str | None = None,
                   text_column: str = "text", encoding: str = "utf-8"
                   ) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of each document of a corpus file, in file order.

    Examples
    --------
    >>> next(iter_documents("corpus.txt"))  # doctest: +SKIP
    (1, 'the first document')
    """
    p = Path(path).expanduser()
    fmt = data_format(p, format)
    try:
        if fmt == "txt":
            yield from _txt(p, encoding)
        elif fmt == "jsonl":
            yield from _jsonl(p, encoding, text_column)
        else:
            yield from _csv(p, encoding, text_column, "," if fmt == "csv" else "\t")
    except UnicodeDecodeError as e:
        raise InputError(f"{p}: bytes {e.object[e.start:e.end]!r} are not valid {encoding} "
                         "text; save the file as UTF-8") from None
