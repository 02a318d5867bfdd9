"""The planted-token task: sentences whose label is decided by known words, and nothing else.

Each sentence is 8-30 neutral words with 1-3 *planted* words put in at random positions. A
planted word is either positive or negative; the majority polarity of the planted words is
the label, and the mix is drawn so that there is always a strict majority (one word, two
alike, or three with at most one dissenter). The neutral words carry no information about the
label, so a faithful explanation of a model that solves the task must point at the planted
positions, which are kept per sentence as ground truth.

The neutral words come from the sentiment corpus (:func:`neutral_words`: frequent words of
the Rotten Tomatoes snippets that are not in the VADER sentiment lexicon) or from the small
built-in list :data:`NEUTRAL_WORDS`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from ..textdata import TextData, TextSplits
from .fetch import DataUnavailableError, fetch, read_member
from .sentiment import LEXICON, SOURCE, load_sentiment

__all__ = ["CLASSES", "NEGATIVE_WORDS", "NEUTRAL_WORDS", "POSITIVE_WORDS", "flip_planted",
           "load_planted", "make_planted", "neutral_words", "planted_label"]

CLASSES = ["negative", "positive"]
POSITIVE_WORDS = ("excellent", "wonderful", "superb", "delightful", "brilliant", "marvelous")
NEGATIVE_WORDS = ("terrible", "awful", "dreadful", "horrible", "dismal", "atrocious")
NEUTRAL_WORDS = tuple("""
the a an of to in on at by for with from about into over after before under between during
this that these those it its they them their he she his her we our you your i me my
is are was were be been being has have had do does did will would can could should may might
film movie story scene scenes character characters director actor actors script plot camera
screen audience minutes hour year years time day night house city town car road water window
door table chair book page letter word words number part side end start middle place room
street train boat river hill tree garden school office kitchen family father mother brother
sister son daughter friend man woman child children people crowd group team music song sound
voice picture color light shadow paper stone glass metal wood cloth shirt coat hat shoe bag
box cup plate bottle phone clock map wall floor roof corner edge line point shape size
walks talks looks turns opens closes moves stands sits waits reads writes says asks tells
then when where while as also just only still again here there now later soon once
""".split())
_NEGATION = frozenset("""not no never none nothing nobody nowhere neither nor cannot without
n't isn't aren't wasn't weren't don't doesn't didn't won't wouldn't can't couldn't shouldn't
but however although though yet very too so really extremely quite rather barely hardly
""".split())
_WORD = re.compile(r"[a-z]+")


def _check_words(words: Sequence[str], what: str) -> list[str]:
    out = [str(w) for w in words]
    bad = [w for w in out if not _WORD.fullmatch(w)]
    if bad:
        raise InputError(f"{what} must be lower-case words of letters a-z (each one token); "
                         f"got {bad[:5]}")
    if not out:
        raise InputError(f"{what} is empty; give at least one word")
    return out


def neutral_words(n: int = 1000, cache_dir: str | os.PathLike[str] | None = None,
                  data: str | os.PathLike[str] | None = None, max_skew: float = 0.2
                  ) -> list[str]:
    """The ``n`` most frequent neutral words of the Rotten Tomatoes snippets.

    A word is neutral when it is lower-case letters only, is not in the VADER sentiment
    lexicon (``vader_lexicon.txt`` of the same pinned sdist), is not a negation, contrast or
    intensity word, and the share of positive snippets among those that contain it differs
    from the share among all snippets by at most ``max_skew``. Words are ordered by the number
    of snippets that contain them, ties alphabetically.

    Parameters
    ----------
    n : int
        How many words to keep.
    cache_dir, data : path, optional
        As for :func:`~lstmlens.datasets.sentiment.load_sentiment`; ``data`` must be the
        ``vaderSentiment-3.3.2.tar.gz`` sdist (the lexicon is read from it).
    max_skew : float
        Largest allowed difference of a word's positive share from the corpus's.

    Examples
    --------
    >>> neutral_words(5)  # doctest: +SKIP
    ['the', 'a', 'and', 'of', 'to']
    """
    if n < 1:
        raise InputError(f"n must be ≥ 1, got {n}")
    if data is not None and not os.path.isfile(data):
        raise DataUnavailableError(f"data={os.fspath(data)!r}: give the {SOURCE.filename} sdist "
                                   "(the sentiment lexicon is read from it)")
    splits = load_sentiment("movies", cache_dir=cache_dir, data=data)
    sdist = data if data is not None else fetch(SOURCE, cache_dir)
    lexicon = {line.split("\t", 1)[0].lower()
               for line in read_member(sdist, LEXICON).decode("utf-8").splitlines() if line}
    counts: Counter[str] = Counter()  # texts containing the word
    positive: Counter[str] = Counter()  # positive texts containing the word
    n_texts = n_positive = 0
    for part in (splits.train, splits.validation, splits.test):
        for text, y in zip(part.texts, part.labels, strict=True):
            seen = set(re.findall(r"[\w']+", text.lower()))
            counts.update(seen)
            n_texts, n_positive = n_texts + 1, n_positive + int(y)
            if y:
                positive.update(seen)
    base = n_positive / n_texts
    words = [w for w in counts if _WORD.fullmatch(w) and w not in lexicon and w not in _NEGATION
             and abs(positive[w] / counts[w] - base) <= max_skew]
    words.sort(key=lambda w: (-counts[w], w))
    return words[:n]


def planted_label(words: Sequence[str], positive: Sequence[str] = POSITIVE_WORDS,
                  negative: Sequence[str] = NEGATIVE_WORDS) -> int | None:
    """The label the rule gives ``words``: 1 if positive planted words are the majority, 0 if
    negative ones are, ``None`` on a tie (no planted word, or as many of each).

    Examples
    --------
    >>> planted_label("the film was superb and awful and brilliant".split())
    1
    """
    pos, neg = set(positive), set(negative)
    p = sum(w in pos for w in words)
    q = sum(w in neg for w in words)
    return None if p == q else int(p > q)


def make_planted(n: int, seed: int = 0, vocab: Sequence[str] | None = None, *,
                 positive: Sequence[str] = POSITIVE_WORDS,
                 negative: Sequence[str] = NEGATIVE_WORDS, min_length: int = 8,
                 max_length: int = 30, max_planted: int = 3) -> TextData:
    """Generate ``n`` planted-token sentences (seeded, deterministic).

    Parameters
    ----------
    n : int
        Number of sentences; labels are balanced (``n // 2`` or ``n // 2 + 1`` positive).
    seed : int
        Seed of everything drawn.
    vocab : sequence of str, optional
        Neutral words (default :data:`NEUTRAL_WORDS`); must not share a word with the planted
        sets.
    positive, negative : sequence of str
        The planted word sets.
    min_length, max_length : int
        Sentence length in words, planted words included, drawn uniformly.
    max_planted : int
        Each sentence gets 1..max_planted planted words, drawn uniformly; at most
        ``(k - 1) // 2`` of ``k`` planted words disagree with the label.

    Returns
    -------
    TextData
        Texts are words joined by single spaces, so word ``j`` is token ``j`` of the word
        tokenizer. ``extras``: ``planted_positions`` (int64 arrays), ``planted_words``
        (lists), ``planted_polarity`` (int64 arrays, 1 positive) per sentence, and
        ``settings`` (the arguments, for a model's meta).

    Examples
    --------
    >>> d = make_planted(2, seed=0)
    >>> words = d.texts[0].split()
    >>> [words[j] for j in d.extras["planted_positions"][0]] == d.extras["planted_words"][0]
    True
    """
    vocab_list = _check_words(NEUTRAL_WORDS if vocab is None else vocab, "vocab")
    pos = _check_words(positive, "positive")
    neg = _check_words(negative, "negative")
    clash = sorted((set(pos) & set(neg)) | (set(vocab_list) & (set(pos) | set(neg))))
    if clash:
        raise InputError(f"the neutral vocabulary and the planted sets must not share words; "
                         f"shared: {clash[:10]}")
    if not isinstance(n, int) or n < 1:
        raise InputError(f"n must be a whole number ≥ 1, got {n!r}")
    if not 1 <= max_planted <= min_length <= max_length:
        raise InputError(f"need 1 ≤ max_planted ≤ min_length ≤ max_length, got {max_planted}, "
                         f"{min_length}, {max_length}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2).astype(np.int64)
    texts: list[str] = []
    positions: list[np.ndarray] = []
    planted_words: list[list[str]] = []
    polarity: list[np.ndarray] = []
    for y in labels:
        k = int(rng.integers(1, max_planted + 1))
        dissent = int(rng.integers(0, (k - 1) // 2 + 1))
        pol = rng.permutation(np.array([y] * (k - dissent) + [1 - y] * dissent, np.int64))
        length = int(rng.integers(min_length, max_length + 1))
        where = np.sort(rng.choice(length, size=k, replace=False)).astype(np.int64)
        words = [vocab_list[i] for i in rng.integers(0, len(vocab_list), size=length)]
        chosen = [pos[rng.integers(len(pos))] if p else neg[rng.integers(len(neg))] for p in pol]
        for j, w in zip(where, chosen, strict=True):
            words[j] = w
        texts.append(" ".join(words))
        positions.append(where)
        planted_words.append(chosen)
        polarity.append(pol)
    settings: dict[str, Any] = {
        "n": n, "seed": seed, "positive": pos, "negative": neg, "min_length": min_length,
        "max_length": max_length, "max_planted": max_planted, "vocab_size": len(vocab_list),
        "rule": "label = majority polarity of the planted words (always a strict majority)",
    }
    return TextData(texts, labels, list(CLASSES),
                    {"planted_positions": positions, "planted_words": planted_words,
                     "planted_polarity": polarity, "settings": settings})


def flip_planted(data: TextData) -> TextData:
    """Swap every planted word for the word at the same index of the opposite set.

    The neutral words stay; the label flips. Used to check that only planted words decide.

    Examples
    --------
    >>> d = make_planted(4, seed=1)
    >>> bool((flip_planted(d).labels == 1 - d.labels).all())
    True
    """
    s = data.extras.get("settings", {})
    try:
        pos, neg = list(s["positive"]), list(s["negative"])
        positions = data.extras["planted_positions"]
        planted = data.extras["planted_words"]
    except KeyError:
        raise InputError("flip_planted takes data from make_planted (with its extras)") from None
    if len(pos) != len(neg):
        raise InputError("flip_planted needs planted sets of the same size")
    swap = {**dict(zip(pos, neg, strict=True)), **dict(zip(neg, pos, strict=True))}
    texts, new_words = [], []
    for text, where, chosen in zip(data.texts, positions, planted, strict=True):
        words = text.split(" ")
        for j in where:
            words[j] = swap[words[j]]
        texts.append(" ".join(words))
        new_words.append([swap[w] for w in chosen])
    extras = dict(data.extras)
    extras["planted_words"] = new_words
    extras["planted_polarity"] = [1 - p for p in data.extras["planted_polarity"]]
    return TextData(texts, 1 - data.labels, list(data.classes), extras)


def load_planted(n_train: int = 6000, n_validation: int = 1000, n_test: int = 2000,
                 seed: int = 0, vocab: Sequence[str] | None = None,
                 **settings: Any) -> TextSplits:
    """Three independent planted-token sets (each from its own seed derived from ``seed``).

    ``settings`` go to :func:`make_planted` (``positive``, ``negative``, ``min_length``,
    ``max_length``, ``max_planted``).

    Examples
    --------
    >>> splits = load_planted(100, 20, 20, seed=0)
    >>> len(splits.train), splits.classes
    (100, ['negative', 'positive'])
    """
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(3)]
    parts = [make_planted(k, sd, vocab, **settings)
             for k, sd in zip((n_train, n_validation, n_test), seeds, strict=True)]
    info = {"name": "planted tokens", **parts[0].extras["settings"],
            "n": {"train": n_train, "validation": n_validation, "test": n_test},
            "seed": seed, "split_seeds": seeds}
    return TextSplits(*parts, classes=list(CLASSES), source=info)
