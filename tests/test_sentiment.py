"""Sentiment data (VADER ground truth from the pinned vaderSentiment sdist), predict_text, and
the `sentiment` task."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import lstmlens
from lstmlens.datasets.fetch import ChecksumError, DataUnavailableError, fetch
from lstmlens.datasets.sentiment import SOURCE, load_sentiment, parse_ground_truth
from lstmlens.errors import InputError, ModelError
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.tasks import train_task
from lstmlens.textdata import fit_tokenizer, predict_text

# ------------------------------------------------------------------------------ parsing


def test_parse_ground_truth_handles_crlf_tabs_and_blank_lines() -> None:
    ids, ratings, texts = parse_ground_truth(
        "1\t2.5\tA fine\tfilm.\r\n2\t-1\tDull.\r\n\r\n3\t0\tMeh.")
    assert ids.tolist() == [1, 2, 3] and ratings.tolist() == [2.5, -1.0, 0.0]
    assert texts == ["A fine\tfilm.", "Dull.", "Meh."]
    assert not any("\r" in t for t in texts)
    with pytest.raises(DataUnavailableError, match="line 2: expected id<TAB>rating<TAB>text"):
        parse_ground_truth("1\t1\tok\r\n2\t1\r\n")
    with pytest.raises(DataUnavailableError, match="line 1: id 'x' or rating"):
        parse_ground_truth("x\t1\tok\n")
    with pytest.raises(DataUnavailableError, match="outside -4..4"):
        parse_ground_truth("1\t4.5\tok\n")


def _fake_corpus(root: Path, ratings: list[float]) -> Path:
    """A directory holding a movies ground-truth file with the real row count (10,605)."""
    lines = []
    for i in range(10605):
        r = ratings[i % len(ratings)]
        lines.append(f"{i + 1}\t{r}\tsnippet {i} ''Title'' is {'good' if r > 0 else 'bad'}")
    root.mkdir()
    (root / "movieReviewSnippets_GroundTruth.txt").write_bytes(
        "\r\n".join(lines).encode("utf-8"))
    return root


def test_loader_from_a_directory_drops_neutral_and_splits_by_class(tmp_path: Path) -> None:
    d = _fake_corpus(tmp_path / "corpus", [1.5, -2.0, 0.0, 0.3])
    s = load_sentiment("movies", data=d, cache_dir=tmp_path / "cache", seed=0)
    c = s.source["counts"]
    assert c["rows"] == 10605 and c["neutral_dropped"] == 2651 and c["kept"] == 10605 - 2651
    assert not (tmp_path / "cache").exists()  # a directory of files is not cached
    texts = s.train.texts + s.validation.texts + s.test.texts
    assert len(set(texts)) == len(texts) == c["kept"]
    assert all('"Title"' in t and "\r" not in t for t in texts)
    for part in (s.train, s.validation, s.test):
        assert all(("good" in t) == bool(y) for t, y in zip(part.texts, part.labels,
                                                             strict=True))
        assert abs(part.labels.mean() - 2 / 3) < 0.01  # the class balance of the whole
        assert (part.extras["ratings"] != 0).all()


def test_bad_data_arguments(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="does not exist"):
        load_sentiment(data=tmp_path / "missing.tar.gz")
    (tmp_path / "fake.tar.gz").write_bytes(b"not the sdist")
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        load_sentiment(data=tmp_path / "fake.tar.gz")
    with pytest.raises(DataUnavailableError, match="without movieReviewSnippets"):
        load_sentiment(data=tmp_path)
    with pytest.raises(DataUnavailableError, match="accepted: \\['movies', 'tweets'\\]"):
        load_sentiment("amazon")


# -------------------------------------------------------------------------- predict_text


def _tiny_model(max_length: int = 5) -> LSTMClassifier:
    tok = fit_tokenizer(["a good film", "a bad film", "the plot"])
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=len(tok),
                                            embedding_dim=4, hidden_sizes=[3]))
    model.tokenizer, model.meta = tok, {"max_length": max_length}
    return model


def test_predict_text_gives_probabilities_and_clear_errors() -> None:
    model = _tiny_model()
    p = predict_text(model, ["a good film", "bad plot !", "film"])
    assert p.shape == (3, 2) and np.allclose(p.sum(1), 1.0, atol=1e-6)
    assert predict_text(model, "a good film").shape == (1, 2)
    with pytest.raises(InputError, match="text 1 is empty"):
        predict_text(model, ["a good film", "   "])
    with pytest.raises(InputError, match="only words this model does not know"):
        predict_text(model, "zyx qqq")
    with pytest.raises(InputError, match="has 6 tokens; this model takes at most 5"):
        predict_text(model, "a good film a good film")
    cut = predict_text(model, "a good film a good film", truncate=True)
    assert np.allclose(cut, predict_text(model, "a good film a good"))
    model.tokenizer = model.tokenizer.to_json()  # as loaded from an older model directory
    assert predict_text(model, ["a good film"]).shape == (1, 2)
    model.tokenizer = None
    with pytest.raises(ModelError, match="no tokenizer"):
        predict_text(model, "a good film")


# ---------------------------------------------------------------------- real data (slow)


@pytest.fixture(scope="session")
def vader_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's cache, filled once by the real pip download (shared with test_planted)."""
    root = tmp_path_factory.getbasetemp() / "lstmlens-cache-vader"
    fetch(SOURCE, root)
    return root


@pytest.mark.slow
def test_movies_loader_real_data(vader_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_sentiment("movies", cache_dir=vader_cache, seed=0)
    c = s.source["counts"]
    # 10,605 snippets: 37 rated exactly 0, and 2 texts that occur twice (same polarity)
    assert c == {"rows": 10605, "neutral_dropped": 37, "repeated_dropped": 2,
                 "conflicting_dropped": 0, "kept": 10566}
    assert s.source["class_counts"] == {"negative": 5325, "positive": 5241}
    parts = (s.train, s.validation, s.test)
    assert [len(p) for p in parts] == [8453, 1057, 1056]
    texts = [t for p in parts for t in p.texts]
    assert len(set(texts)) == 10566
    assert not any("\r" in t or "\n" in t or "''" in t for t in texts)
    assert any("é" in t for t in texts)  # UTF-8 decoded, not mojibake
    for p in parts:
        assert abs(p.labels.mean() - 5241 / 10566) < 0.002
        assert np.array_equal(p.labels, (p.extras["ratings"] > 0).astype(int))
    # the processed cache is used the second time: no pip, same splits; another seed differs
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("network used"))
    again = load_sentiment("movies", cache_dir=vader_cache, seed=0)
    assert again.test.texts == s.test.texts
    assert load_sentiment("movies", cache_dir=vader_cache, seed=1).test.texts != s.test.texts
    sdist = vader_cache / "downloads" / SOURCE.filename
    assert load_sentiment("movies", data=sdist, cache_dir=vader_cache,
                          seed=0).train.texts == s.train.texts


@pytest.mark.slow
def test_tweets_loader_real_data(vader_cache: Path) -> None:
    s = load_sentiment("tweets", cache_dir=vader_cache, seed=0)
    assert s.source["counts"]["rows"] == 4200 and s.source["counts"]["neutral_dropped"] == 4
    assert s.source["class_counts"] == {"negative": 1299, "positive": 2897}
    texts = s.train.texts + s.validation.texts + s.test.texts
    assert len(texts) == 4196
    assert not any("&amp;" in t for t in texts) and any(" & " in t for t in texts)


@pytest.mark.slow
def test_quick_sentiment_task_beats_majority(vader_cache: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSTMLENS_CACHE", str(vader_cache))
    res = train_task("sentiment", tmp_path / "sent", quick=True, progress=False)
    m = res.metrics
    majority = m["baselines"]["majority"]["accuracy"]
    assert 0.49 <= majority <= 0.51
    assert m["test"]["accuracy"] >= majority + 0.10, m["test"]
    assert m["baselines"]["bag_of_words_logreg"]["accuracy"] >= 0.70  # on the 3,000 texts
    model = lstmlens.load(tmp_path / "sent")
    assert model.meta["classes"] == ["negative", "positive"]
    assert model.meta["max_length"] == 100 and model.meta["data"]["corpus"] == "movies"
    assert model.meta["train_texts"] == 3000  # quick: a stratified share of the 8,453
    probs = predict_text(model, ["A gorgeous, witty, moving film.",
                                 "A dull, tedious, pointless mess."])
    assert probs.shape == (2, 2)
    with pytest.raises(InputError, match="at most 100"):
        predict_text(model, "word " * 101)
    x = torch.tensor([[5, 6, 7, 8]])
    tr = lstmlens.trace(model, x)
    for d in ("forward", "backward"):
        assert tuple(tr[f"lstms.0.layers.0.{d}.forget_gate"].shape) == (1, 4, 32)
