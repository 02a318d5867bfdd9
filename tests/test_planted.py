"""The planted-token generator (ground truth for explanation tests) and the `planted` task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lstmlens
from lstmlens.datasets.fetch import fetch, read_member
from lstmlens.datasets.planted import (
    NEGATIVE_WORDS,
    NEUTRAL_WORDS,
    POSITIVE_WORDS,
    flip_planted,
    load_planted,
    make_planted,
    neutral_words,
    planted_label,
)
from lstmlens.datasets.sentiment import LEXICON, SOURCE
from lstmlens.errors import InputError
from lstmlens.tasks import train_task
from lstmlens.textdata import predict_text
from lstmlens.tokenizers import Tokenizer

PLANTED = set(POSITIVE_WORDS) | set(NEGATIVE_WORDS)


@pytest.fixture(scope="module")
def data():
    return make_planted(3000, seed=7)


def test_sentences_follow_the_stated_rule(data) -> None:
    tok = Tokenizer("word")
    counts = []
    for text, y, where, words, pol in zip(
            data.texts, data.labels, data.extras["planted_positions"],
            data.extras["planted_words"], data.extras["planted_polarity"], strict=True):
        tokens = tok.split(text)  # the tokenizer sees the same words at the same positions
        assert 8 <= len(tokens) <= 30 and 1 <= len(where) <= 3
        assert [tokens[j] for j in where] == words
        assert [j for j, t in enumerate(tokens) if t in PLANTED] == where.tolist()
        assert all(t in NEUTRAL_WORDS for j, t in enumerate(tokens) if j not in set(where))
        assert pol.tolist() == [int(w in POSITIVE_WORDS) for w in words]
        p = int(pol.sum())
        assert p != len(pol) - p  # never a tie
        assert planted_label(tokens) == y == int(p > len(pol) - p)
        counts.append(len(where))
    assert set(counts) == {1, 2, 3}
    assert abs(data.labels.mean() - 0.5) < 1e-3  # balanced


def test_flipping_the_planted_words_flips_the_label(data) -> None:
    flipped = flip_planted(data)
    assert np.array_equal(flipped.labels, 1 - data.labels)
    for a, b, where in zip(data.texts, flipped.texts, data.extras["planted_positions"],
                           strict=True):
        wa, wb = a.split(), b.split()
        changed = [j for j in range(len(wa)) if wa[j] != wb[j]]
        assert changed == where.tolist()
        assert planted_label(wb) == 1 - planted_label(wa)


def test_neutral_words_carry_no_label_information(data) -> None:
    """A bag-of-words model sees chance without the planted words, and the rule with them."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    test = make_planted(2000, seed=8)

    def strip(d):
        return [" ".join(w for w in t.split() if w not in PLANTED) for t in d.texts]

    for train_texts, test_texts, lo, hi in ((strip(data), strip(test), 0.44, 0.56),
                                            (data.texts, test.texts, 0.97, 1.0)):
        vec = CountVectorizer(token_pattern=r"\w+")
        clf = LogisticRegression(max_iter=1000).fit(vec.fit_transform(train_texts), data.labels)
        acc = clf.score(vec.transform(test_texts), test.labels)
        assert lo <= acc <= hi, acc


def test_seeded_and_deterministic() -> None:
    a, b, c = make_planted(50, seed=1), make_planted(50, seed=1), make_planted(50, seed=2)
    assert a.texts == b.texts and np.array_equal(a.labels, b.labels)
    assert a.texts != c.texts
    s = load_planted(40, 10, 10, seed=0)
    assert len(s.train) == 40 and s.train.texts != s.test.texts[:10]
    assert s.source["positive"] == list(POSITIVE_WORDS)


def test_settings_are_checked() -> None:
    with pytest.raises(InputError, match="must not share"):
        make_planted(5, vocab=["film", "superb"])
    with pytest.raises(InputError, match="lower-case words"):
        make_planted(5, vocab=["Film", "two words"])
    with pytest.raises(InputError, match="max_planted"):
        make_planted(5, min_length=3, max_length=2)
    with pytest.raises(InputError, match="whole number"):
        make_planted(0)
    d = make_planted(200, seed=0, vocab=["x", "y"], positive=["up"], negative=["down"],
                     min_length=5, max_length=5, max_planted=5)
    assert all(len(t.split()) == 5 for t in d.texts)
    assert max(len(w) for w in d.extras["planted_words"]) == 5


# ---------------------------------------------------------------------- real vocabulary


@pytest.fixture(scope="session")
def vader_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's cache with the pinned vaderSentiment sdist (shared with test_sentiment)."""
    root = tmp_path_factory.getbasetemp() / "lstmlens-cache-vader"
    fetch(SOURCE, root)
    return root


@pytest.mark.slow
def test_neutral_words_from_the_sentiment_corpus(vader_cache: Path) -> None:
    words = neutral_words(300, cache_dir=vader_cache)
    lexicon = {line.split("\t")[0] for line in read_member(
        vader_cache / "downloads" / SOURCE.filename, LEXICON).decode().splitlines()}
    assert len(words) == 300 == len(set(words))
    assert words[:3] == ["the", "a", "and"]
    assert not (set(words) & (lexicon | PLANTED | {"not", "but", "very"}))
    assert "film" in words and "good" not in words and "bad" not in words


# ---------------------------------------------------------------------------- the task


@pytest.mark.slow
def test_quick_planted_task_learns_the_rule(tmp_path: Path) -> None:
    res = train_task("planted", tmp_path / "planted", quick=True,
                                    progress=False, vocabulary="builtin")
    m = res.metrics
    assert m["test"]["accuracy"] >= 0.97, m["test"]  # quick: 6 epochs on 2,000 sentences
    assert 0.45 <= m["baselines"]["majority"]["accuracy"] <= 0.55
    model = lstmlens.load(tmp_path / "planted")
    assert model.meta["planted"] == {"positive": list(POSITIVE_WORDS),
                                     "negative": list(NEGATIVE_WORDS)}
    gen = model.meta["generation"]
    assert gen["max_planted"] == 3 and gen["neutral_words"] == list(NEUTRAL_WORDS)
    n = gen["n"]
    again = load_planted(n["train"], n["validation"], n["test"], seed=gen["seed"],
                         vocab=gen["neutral_words"])
    assert again.test.texts[:3] == load_planted(2000, 300, 1000, seed=0,
                                                vocab=NEUTRAL_WORDS).test.texts[:3]
    probs = predict_text(model, ["the film superb the story", "the film awful the story"])
    assert probs.argmax(1).tolist() == [1, 0]
    x = np.array([[2, 3, 4, 5, 6]])
    tr = lstmlens.trace(model, x)
    for key in ("lstms.0.layers.0.forward.forget_gate", "lstms.0.layers.0.forward.cell",
                "lstms.0.layers.0.forward.hidden"):
        assert tuple(tr[key].shape) == (1, 5, 64)
