"""The explorer's JSON API through the ASGI test client, on tiny random-weight models of
every kind (classifier, character LM, forecaster, translation model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from neurons_helpers import TEXTS, char_lm, code_pieces, word_classifier

import lstmlens
from lstmlens.explorer import Explorer, Limits
from lstmlens.methods import method_names
from lstmlens.models.seq2seq import TokenizerPair
from lstmlens.server import create_app


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    from test_explain_models import _forecaster, _translator
    root = tmp_path_factory.mktemp("serve")
    fc, mt = _forecaster(), _translator()
    tok = mt.tokenizer
    return {
        "clf": word_classifier(root / "clf", hidden=8),
        "lm": char_lm(root / "lm", hidden=8),
        "fc": lstmlens.save(fc, root / "fc", meta={"history": [10.0, 10.5, 11.2, 10.9, 11.4,
                                                               11.8], "history_start": 40.0}),
        "mt": lstmlens.save(mt, root / "mt", tokenizer=TokenizerPair(tok["source"],
                                                                     tok["target"]), meta={}),
    }


@pytest.fixture(scope="module")
def clf(dirs):
    return TestClient(create_app(Explorer(dirs["clf"], corpus=TEXTS * 3)))


def test_model_card(clf, dirs):
    r = clf.get("/api/model")
    assert r.status_code == 200
    card = r.json()
    assert card["kind"] == "classifier" and card["classes"] == ["negative", "positive"]
    assert card["methods"] == list(method_names())
    assert card["corpus_size"] == 18 and card["reads_text"]
    assert card["layers"][0]["hidden_size"] == 8
    assert "sentence" in card["views"] and "translation" not in card["views"]


def test_explain_every_method_matches_the_library(clf, dirs):
    text = "a good film , not boring"
    r = clf.post("/api/explain", json={"text": text})
    assert r.status_code == 200
    res = r.json()
    model = lstmlens.load(dirs["clf"])
    assert set(res["methods"]) == set(method_names())
    for name in ("cd", "lrp", "occlusion"):
        att = lstmlens.explain(model, text, name)
        np.testing.assert_allclose(res["methods"][name]["scores"],
                                   att.scores[0].double().numpy(), atol=1e-6)
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([model.tokenizer.encode(text)])), -1)[0]
    assert res["prediction"]["index"] == int(probs.argmax())
    assert res["prediction"]["confidence"] == pytest.approx(float(probs.max()), abs=1e-5)
    assert res["tokens"] == model.tokenizer.split(text)


def test_methods_side_by_side_on_threads_equal_one_after_another(dirs, torch_threads):
    """The explorer runs a request's methods on its threads; the answer is the same as one
    method after another on one thread (sampling methods are seeded)."""
    ex = Explorer(dirs["clf"], corpus=TEXTS)
    torch_threads(2)
    side = ex.explain("a good film , not boring")
    torch_threads(1)
    one = ex.explain("a good film , not boring")
    assert list(side["methods"]) == list(one["methods"]) == ex.methods()
    for name, res in one["methods"].items():
        if "error" in res:
            assert side["methods"][name] == res
        else:
            np.testing.assert_allclose(side["methods"][name]["scores"], res["scores"],
                                       atol=1e-6)


def test_explain_selected_methods_and_target(clf):
    r = clf.post("/api/explain", json={"text": "a bad film", "methods": ["cd"],
                                       "target": "negative"})
    assert r.status_code == 200 and list(r.json()["methods"]) == ["cd"]
    assert r.json()["target"] == "negative"


def test_gates_of_one_step_and_of_all(clf):
    r = clf.post("/api/gates", json={"text": "a good film", "step": 1})
    g = r.json()
    assert r.status_code == 200 and g["tokens"] == ["a", "good", "film"]
    assert len(g["keys"]) == 6 and all(len(g["values"][k]) == 8 for k in g["keys"])
    full = clf.post("/api/gates", json={"text": "a good film"}).json()
    k = "lstms.0.layers.0.forward.forget_gate"
    assert full["values"][k][1] == g["values"][k]
    assert all(0 <= v <= 1 for row in full["values"][k] for v in row)


def test_match_finds_the_query_phrase_in_the_corpus(clf):
    r = clf.post("/api/match", json={"sequence": 0, "start": 1, "end": 2, "threshold": 0.0})
    res = r.json()
    assert r.status_code == 200
    if res["units"]:  # the corpus holds the query itself: it must match somewhere
        assert res["matches"]
        assert all(len(m["tokens"]) >= 1 for m in res["matches"])
    units = clf.post("/api/match", json={"text": "a good film", "units": [0, 1],
                                         "threshold": -1.0}).json()
    assert units["units"] == [0, 1] and units["matches"]  # every step is ≥ −1


def test_neurons(clf):
    s = clf.get("/api/neurons/saturation").json()
    assert len(s["gates"]) == 3 and all(len(g["left"]) == 8 for g in s["gates"].values())
    u = clf.get("/api/neurons/units", params={"feature": "position", "k": 3}).json()
    assert len(u["units"]) == 3
    c = clf.get("/api/neurons/contexts", params={"unit": 2, "k": 4}).json()
    assert len(c["contexts"]) == 4
    vals = [x["value"] for x in c["contexts"]]
    assert vals == sorted(vals, reverse=True)


def test_rules_fitted_on_the_corpus_or_read_from_the_model_dir(dirs, tmp_path):
    c = TestClient(create_app(Explorer(dirs["clf"], corpus=TEXTS * 3)))
    r = c.get("/api/rules")  # random weights: no phrase passes the default thresholds
    assert r.status_code == 400 and "threshold" in r.json()["detail"]
    import shutil
    d = shutil.copytree(dirs["clf"], tmp_path / "clf")
    (d / "rules.json").write_text(json.dumps({"rules": [{"pattern": ["<b>x</b>"],
                                                         "class_name": "positive",
                                                         "support": 3, "precision": 1.0}],
                                              "default": "negative"}))
    r = TestClient(create_app(Explorer(d, corpus=TEXTS))).get("/api/rules")
    assert r.status_code == 200 and r.json()["rules"][0]["pattern"] == ["<b>x</b>"]


def test_evaluation_only_when_computed(clf, dirs, tmp_path):
    r = clf.get("/api/evaluation")
    assert r.status_code == 400 and "lstmlens evaluate" in r.json()["detail"]


def test_bad_input_gets_4xx_with_a_message(clf):
    cases = [
        (clf.post("/api/explain", json={"text": ""}), 400, "empty"),
        (clf.post("/api/explain", json={"text": "x", "methods": ["nope"]}), 400, "cd"),
        (clf.post("/api/explain", json={"text": "x", "sequence": 0}), 400, "either"),
        (clf.post("/api/explain", json={"sequence": 999}), 400, "out of range"),
        (clf.post("/api/explain", json={"text": "a film", "target": 7}), 400, "0..1"),
        (clf.post("/api/match", json={"text": "a film", "start": 2, "end": 1}), 400, "span"),
        (clf.post("/api/match", json={"text": "a film", "start": 0, "end": 9}), 400,
         "outside"),
        (clf.post("/api/gates", json={"text": "a film", "step": 5}), 400, "out of range"),
        (clf.get("/api/neurons/units", params={"feature": "../etc/passwd"}), 400, "feature"),
        (clf.get("/api/neurons/contexts", params={"unit": 99}), 400, "out of range"),
        (clf.get("/api/automaton"), 400, "formal"),
        (clf.post("/api/translate", json={"text": "a"}), 400, "translation"),
        (clf.get("/api/forecast"), 400, "forecaster"),
        (clf.post("/api/explain", content=b"{not json",
                  headers={"content-type": "application/json"}), 422, None),
        (clf.post("/api/explain", json={"text": "a", "bogus": 1}), 422, None),
        (clf.get("/api/corpus", params={"limit": -1}), 422, None),
    ]
    for r, status, word in cases:
        assert r.status_code == status, (r.request.url, r.text)
        if word:
            assert word in r.json()["detail"], r.json()


def test_limits_on_body_and_input_length(dirs):
    c = TestClient(create_app(Explorer(dirs["clf"], corpus=TEXTS,
                                       limits=Limits(max_tokens=5, max_body=2000))))
    r = c.post("/api/explain", json={"text": "a good film " * 3})
    assert r.status_code == 400 and "at most 5" in r.json()["detail"]
    r = c.post("/api/explain", content=b'{"text": "' + b"a" * 5000 + b'"}',
               headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert c.get("/api/model").status_code == 200  # still up


def test_security_headers_and_static_front_end(clf):
    r = clf.get("/")
    assert r.status_code == 200 and "lstmlens explorer" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    js = clf.get("/static/app.js")
    assert js.status_code == 200 and ".innerHTML" not in js.text  # text only via textContent
    assert "http://" not in r.text + js.text.replace("http://www.w3.org/2000/svg", "")
    assert clf.get("/static/../server.py").status_code == 404


def test_openapi_describes_every_route(clf):
    paths = clf.get("/openapi.json").json()["paths"]
    for p in ("/api/model", "/api/explain", "/api/gates", "/api/match", "/api/rules",
              "/api/neurons/saturation", "/api/neurons/units", "/api/neurons/contexts",
              "/api/automaton", "/api/evaluation", "/api/translate", "/api/forecast"):
        assert p in paths


def test_language_model_explains_the_next_character(dirs):
    c = TestClient(create_app(Explorer(dirs["lm"], corpus=code_pieces(4, 60))))
    res = c.post("/api/explain", json={"text": "def f(x):", "methods": ["cd", "lrp"]}).json()
    assert res["tokens"] == list("def f(x):") and len(res["probabilities"]) > 10
    assert len(res["methods"]["cd"]["scores"]) == 9


def test_forecast_view(dirs):
    ex = Explorer(dirs["fc"])
    assert ex.corpus and ex.corpus[0].ndim == 2  # the stored history window
    c = TestClient(create_app(ex))
    r = c.get("/api/forecast", params={"sequence": 0, "method": "integrated_gradients"})
    f = r.json()
    assert r.status_code == 200 and len(f["forecast"]) == 3
    assert np.asarray(f["scores"]).shape == np.asarray(f["window"]).shape
    assert "forecast" in c.get("/api/model").json()["views"]
    r = c.post("/api/explain", json={"text": "1 2 3"})
    assert r.status_code == 400 and "feature sequences" in r.json()["detail"]
    assert c.post("/api/explain", json={"sequence": 0, "methods": ["cd"]}).status_code == 200


def test_translation_view(dirs):
    c = TestClient(create_app(Explorer(dirs["mt"])))
    r = c.post("/api/translate", json={"text": "the king saw the woman"})
    t = r.json()
    assert r.status_code == 200 and t["source_tokens"] == ["the", "king", "saw", "the", "woman"]
    att = np.asarray(t["attention"])
    assert att.shape == (len(t["tokens"]), 5)
    np.testing.assert_allclose(att.sum(1), 1.0, atol=1e-3)
    res = c.post("/api/explain", json={"text": "the king saw the woman",
                                       "methods": ["attention", "cd"]}).json()
    assert "error" in res["methods"]["cd"] and "scores" in res["methods"]["attention"]


def test_serve_cli_refuses_a_missing_model_dir(tmp_path):
    from typer.testing import CliRunner

    from lstmlens.cli import app
    r = CliRunner().invoke(app, ["serve", str(tmp_path / "nope")])
    assert r.exit_code == 1 and "does not exist" in r.output
    assert "Traceback" not in r.output
    (tmp_path / "notamodel").mkdir()
    r = CliRunner().invoke(app, ["serve", str(tmp_path / "notamodel"), "--port", "0"])
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_store_made_by_another_model_is_refused(dirs, tmp_path):
    from lstmlens.store_index import index_corpus
    data = tmp_path / "docs.txt"
    data.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    store = index_corpus(dirs["clf"], data, tmp_path / "store")
    ex = Explorer(dirs["clf"], store=tmp_path / "store")
    assert store is not None
    c = TestClient(create_app(ex))
    res = c.post("/api/match", json={"text": "a good film", "units": [0, 1],
                                     "threshold": -1.0}).json()
    assert res["matches"] and "document" in res["matches"][0]
    assert c.get("/api/model").json()["corpus_size"] == len(TEXTS)  # the store's documents
    r = c.get("/api/rules")  # a store's documents are token ids, not texts to mine
    assert r.status_code == 400 and "rules.json" in r.json()["detail"]
    first = c.post("/api/explain", json={"sequence": 2, "methods": ["cd"]}).json()
    assert first["tokens"] == lstmlens.open_store(tmp_path / "store").document(2).tokens
    ctx = c.get("/api/neurons/contexts", params={"unit": 1, "k": 3}).json()
    assert len(ctx["contexts"]) == 3
    other = word_classifier(tmp_path / "other", hidden=8, seed=5)
    with pytest.raises(lstmlens.InputError, match="another model"):
        Explorer(other, store=tmp_path / "store")


def test_concurrent_requests_are_batched_with_the_same_results(dirs):
    from concurrent.futures import ThreadPoolExecutor

    from lstmlens.batcher import Batcher
    ex = Explorer(dirs["clf"], corpus=TEXTS)
    texts = ["a good film", "a bad , dull film", "not good at all", "boring and far too long",
             "great acting", "a film"] * 2
    alone = [ex._explain_batch([t], ["cd", "lrp", "occlusion"], None)[0] for t in texts]
    sizes = []
    run = ex._batcher.run
    ex._batcher.run = lambda key, items: sizes.append(len(items)) or run(key, items)
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda t: ex.explain(t, ["cd", "lrp", "occlusion"]), texts))
    for a, b in zip(alone, together, strict=True):
        assert a["tokens"] == b["tokens"] and a["prediction"]["index"] == b["prediction"]["index"]
        for m in ("cd", "lrp", "occlusion"):
            np.testing.assert_allclose(a["methods"][m]["scores"], b["methods"][m]["scores"],
                                       atol=1e-5)
    assert sum(sizes) == len(texts)

    def run_or_fail(key, items):  # one bad input fails a batch: the others still get theirs
        if "bad" in items:
            raise lstmlens.InputError("bad item")
        return [f"ok {i}" for i in items]

    b = Batcher(run_or_fail)
    with ThreadPoolExecutor(6) as pool:
        futs = [pool.submit(b.submit, "k", it) for it in ["a", "bad", "c", "d", "e", "f"]]
    for it, f in zip(["a", "bad", "c", "d", "e", "f"], futs, strict=True):
        if it == "bad":
            with pytest.raises(lstmlens.InputError, match="bad item"):
                f.result()
        else:
            assert f.result() == f"ok {it}"


def test_corpus_from_a_text_file(dirs, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("a good film\n\nnot good at all\n", encoding="utf-8")
    ex = Explorer(dirs["clf"], corpus=path)
    assert ex.corpus == ["a good film", "not good at all"]  # blank lines skipped
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    with pytest.raises(lstmlens.InputError, match="empty"):
        Explorer(dirs["clf"], corpus=tmp_path / "empty.txt")
