"""Users' own text files (lstmlens.datasets.userdata) and the shared text helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lstmlens.datasets.userdata import load_text_file
from lstmlens.errors import InputError
from lstmlens.textdata import (
    TextData,
    encode_texts,
    fit_tokenizer,
    split_text_data,
    stratified_indices,
)


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return p


# ------------------------------------------------------------------------------ reading


def test_csv_with_quotes_crlf_and_multiline_fields(tmp_path: Path) -> None:
    p = _write(tmp_path, "r.csv", 'id,text,label\r\n1,"good, really",pos\r\n'
               '2,"two\nlines",neg\r\n\r\n3,fine,pos\r\n')
    d = load_text_file(p)
    assert d.texts == ["good, really", "two\nlines", "fine"]
    assert d.classes == ["neg", "pos"]
    assert d.labels.tolist() == [1, 0, 1]
    assert d.extras["line_numbers"].tolist() == [2, 3, 6]  # where each row starts


def test_tsv_bom_and_custom_columns(tmp_path: Path) -> None:
    p = _write(tmp_path, "r.tsv", "\ufeffreview\tstars\nnice\t5\nbad\t1\nok\t10\n")
    d = load_text_file(p, text_column="review", label_column="stars")
    assert d.texts == ["nice", "bad", "ok"]
    assert d.classes == ["1", "5", "10"]  # whole numbers sort numerically
    assert d.labels.tolist() == [1, 0, 2]


def test_jsonl_labels_of_several_types(tmp_path: Path) -> None:
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 0}, {"text": "c", "label": 1.0}]
    p = _write(tmp_path, "r.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    d = load_text_file(p)
    assert d.classes == ["0", "1"] and d.labels.tolist() == [1, 0, 1]


def test_given_classes_fix_the_order(tmp_path: Path) -> None:
    p = _write(tmp_path, "r.csv", "text,label\na,positive\nb,negative\n")
    d = load_text_file(p, classes=["negative", "positive"])
    assert d.labels.tolist() == [1, 0]


def test_txt_one_text_per_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "corpus.txt", "first line\r\n\r\nsecond line\rthird\n")
    d = load_text_file(p)
    assert d.texts == ["first line", "second line", "third"]
    assert d.labels is None and d.extras["line_numbers"].tolist() == [1, 3, 4]


def test_texts_only_from_a_table(tmp_path: Path) -> None:
    p = _write(tmp_path, "r.csv", "text\na\nb\n")
    d = load_text_file(p, label_column=None)
    assert d.texts == ["a", "b"] and d.labels is None


# ------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("name", "content", "kwargs", "message"), [
    ("r.csv", "body,label\nx,1\n", {}, r"line 1.*no column 'text'.*\['body', 'label'\]"),
    ("r.csv", "text,label\nx,1\n  ,0\n", {}, r"line 3: the text \('text'\) is empty"),
    ("r.csv", "text,label\nx,1\ny,\n", {}, r"line 3: the label \('label'\) is missing"),
    ("r.csv", "text,label\nx,1\ny\n", {}, r"line 3: the label \('label'\) is missing"),
    ("r.csv", "text,label\nx,pos\ny,meh\n", {"classes": ["neg", "pos"]},
     r"line 3: unknown label 'meh'; accepted: \['neg', 'pos'\]"),
    ("r.csv", b"text,label\nx,1\ny\xff\xfe,0\n", {}, r"line 3, byte 2.*not valid utf-8"),
    ("r.csv", "", {}, r"is empty"),
    ("r.txt", " \n\n", {}, r"is empty"),
    ("r.csv", "text,label\n", {}, r"no rows"),
    ("r.jsonl", '{"text": "a", "label": 1}\n{"text": "b", label: 1}\n', {},
     r"line 2: not valid JSON"),
    ("r.jsonl", '["a", 1]\n', {}, r"line 1: expected a JSON object"),
    ("r.jsonl", '{"txt": "a", "label": 1}\n', {}, r"line 1: no key 'text'"),
    ("r.jsonl", '{"text": "a"}\n', {}, r"line 1: the label \('label'\) is missing"),
    ("r.jsonl", '{"text": "", "label": 1}\n', {}, r"line 1: the text \('text'\) is empty"),
    ("r.jsonl", '{"text": "a", "label": [1]}\n', {}, r"line 1: the label .* must be"),
    ("r.xml", "<a/>", {}, r"cannot tell the file format.*accepted: \.csv"),
    ("r.csv", "text,label\na,1\n", {"format": "xls"}, r"unknown format 'xls'"),
    ("r.csv", "text,label\na,1\n", {"encoding": "klingon"}, r"unknown encoding"),
])
def test_errors_name_the_line_and_what_is_accepted(tmp_path: Path, name: str,
                                                   content: str | bytes, kwargs: dict,
                                                   message: str) -> None:
    p = _write(tmp_path, name, content)
    with pytest.raises(InputError, match=message):
        load_text_file(p, **kwargs)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_text_file(tmp_path / "nope.csv")


def test_other_encodings_on_request(tmp_path: Path) -> None:
    p = _write(tmp_path, "r.csv", "text,label\ncaf\xe9,1\nbad,0\n".encode("cp1252"))
    with pytest.raises(InputError, match="line 2"):
        load_text_file(p)
    assert load_text_file(p, encoding="cp1252").texts[0] == "café"


# ------------------------------------------------------------------------ text helpers


def test_stratified_split_is_seeded_disjoint_and_balanced() -> None:
    labels = np.array([0] * 300 + [1] * 100)
    a = stratified_indices(labels, (0.8, 0.1, 0.1), seed=3)
    b = stratified_indices(labels, (0.8, 0.1, 0.1), seed=3)
    c = stratified_indices(labels, (0.8, 0.1, 0.1), seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    assert sorted(np.concatenate(a).tolist()) == list(range(400))
    assert [len(p) for p in a] == [320, 40, 40]
    assert [int(labels[p].sum()) for p in a] == [80, 10, 10]
    with pytest.raises(InputError, match="sum to 1"):
        stratified_indices(labels, (0.8, 0.3), seed=0)


def test_split_text_data_keeps_extras_aligned() -> None:
    d = TextData([f"t{i}" for i in range(50)], np.arange(50) % 2, ["a", "b"],
                 {"ids": np.arange(50), "names": [f"n{i}" for i in range(50)], "note": "x"})
    s = split_text_data(d, seed=0)
    for part in (s.train, s.validation, s.test):
        assert [f"t{i}" for i in part.extras["ids"]] == part.texts
        assert [n[1:] for n in part.extras["names"]] == [t[1:] for t in part.texts]
        assert part.extras["note"] == "x"
    with pytest.raises(InputError, match="too few"):
        split_text_data(TextData(["a", "b"], np.array([0, 1])), seed=0)


def test_encode_texts_truncates_training_text_and_names_empty_text() -> None:
    d = TextData(["a b c d e", "a"], np.array([0, 1]))
    tok = fit_tokenizer(d.texts)
    enc = encode_texts(d, tok, max_length=3)
    assert enc.lengths.tolist() == [3, 1] and enc.inputs[0].dtype == np.int64
    with pytest.raises(InputError, match="at most 3"):
        encode_texts(d, tok, max_length=3, truncate=False)
    with pytest.raises(InputError, match=r"text 1 .*empty"):
        encode_texts(TextData(["a", " "], np.array([0, 1])), tok)
    with pytest.raises(InputError, match="labels must be 1-D"):
        TextData(["a"], np.array([0, 1]))


# ------------------------------------------------------------------ the sentiment task


def test_sentiment_task_refuses_unlabelled_and_one_class_files(tmp_path: Path) -> None:
    from lstmlens.tasks import train_task

    txt = _write(tmp_path, "lines.txt", "a\nb\n")
    with pytest.raises(InputError, match="has no labels"):
        train_task("sentiment", tmp_path / "m", data=str(txt), progress=False)
    one = _write(tmp_path, "one.csv", "text,label\n" + "a,x\n" * 10)
    with pytest.raises(InputError, match="at least two classes"):
        train_task("sentiment", tmp_path / "m", data=str(one), progress=False)
    few = _write(tmp_path, "few.csv", "text,label\n" + "a,x\n" * 10 + "b,y\n")
    with pytest.raises(InputError, match=r"classes \['y'\] have fewer than 3"):
        train_task("sentiment", tmp_path / "m", data=str(few), progress=False)


@pytest.mark.slow
def test_sentiment_task_trains_on_a_users_csv(tmp_path: Path) -> None:
    import lstmlens
    from lstmlens.datasets.planted import make_planted
    from lstmlens.tasks import train_task

    d = make_planted(400, seed=0)
    rows = [f"{t},{'yes' if y else 'no'}" for t, y in zip(d.texts, d.labels, strict=True)]
    p = _write(tmp_path, "mine.csv", "review,verdict\n" + "\n".join(rows) + "\n")
    res = train_task("sentiment", tmp_path / "m", data=str(p), quick=True, epochs=1,
                     progress=False, text_column="review", label_column="verdict")
    model = lstmlens.load(tmp_path / "m")
    assert model.meta["classes"] == ["no", "yes"]
    assert model.meta["data"]["rows"] == 400 and model.meta["data"]["format"] == "csv"
    assert res.metrics["baselines"]["bag_of_words_logreg"]["accuracy"] >= 0.9
    assert set(res.metrics["test"]) == {"loss", "accuracy"}
