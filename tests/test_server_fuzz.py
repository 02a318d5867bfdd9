"""Schemathesis against the explorer's own OpenAPI schema, in-process through ASGI: every
API operation of ``lstmlens serve``, for each kind of model, gets requests that fit the
schema, requests that do not, and plausible requests (real texts, corpus indices, method
names, spans and units near the edges, which random generation seldom finds), all seeded
and bounded. None may get a 5xx; where the schema declares a response, the body must fit
it. Tiny random-weight models: the point is the server's handling of input, not what the
models say."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import schemathesis
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from neurons_helpers import TEXTS, char_lm, code_pieces, word_classifier
from schemathesis import BaseSchema, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from test_explain_models import _forecaster, _translator, _windows

import lstmlens
from lstmlens.datasets.formal_data import tomita_data
from lstmlens.explorer import Explorer, Limits
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.models.seq2seq import TokenizerPair
from lstmlens.server import create_app
from lstmlens.store_index import index_corpus
from lstmlens.tasks.formal import CLASSES, formal_tokenizer

KINDS = ["classifier", "language_model", "forecaster", "translation", "formal", "store"]
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# Every method on every request is the slow part: small inputs keep each request short.
LIMITS = Limits(max_chars=200, max_tokens=24)
EXAMPLES = 12  # per operation and model kind, of each sort (seeded)
FEW = 3  # for an operation the kind does not have, or does not change (a 4xx, or as before)
ONLY = {"/api/translate": "translation", "/api/forecast": "forecaster",
        "/api/automaton": "formal", "/api/rules": "classifier",
        "/api/evaluation": "classifier"}
STORE = {"/api/model", "/api/match", "/api/neurons/contexts", "/api/neurons/saturation"}
WORDS = sorted({w for t in TEXTS for w in t.split()}) + [
    "the", "king", "saw", "woman", "0110", "def", "(x):", "<unk>", "ünïcode", "\u2028", "'"]
ODD_TEXTS = ["a", "film ", "\ud800", "a\x00b", "<script>alert(1)</script>", " \t\n"]
HUGE = [2**63, -(2**70), 10**30]
KEYS = ["cell", "hidden", "forget_gate", "backward.cell", "lstms.0.layers.0.forward.cell",
        "lstms.0.layers.0.backward.hidden", "lstms.7.cell", "no_such_series", ""]


def _formal(path: Path) -> Path:
    """A Tomita-4 recogniser directory as ``lstmlens train tomita`` writes it, random
    weights (extraction only needs the network and its recorded task)."""
    splits = tomita_data(4, max_length=6, per_length=4, test_per_length=2, seed=0)
    tok = formal_tokenizer(splits.alphabet)
    torch.manual_seed(3)
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=len(tok),
                                            embedding_dim=4, hidden_sizes=[6]))
    meta = {"task": "formal/tomita", "grammar": 4, "language": splits.language,
            "classes": CLASSES, "alphabet": splits.alphabet, "start_symbol": "^",
            "max_length": splits.max_length, "dfa": splits.dfa.to_json(),
            "data": splits.info, "seed": 0}
    return lstmlens.save(model, path, tokenizer=tok.to_json(), meta=meta)


def _explorer(kind: str, root: Path) -> Explorer:
    if kind == "store":  # the classifier, with a corpus store from `lstmlens index`
        (root / "corpus.txt").write_text("\n".join(TEXTS * 3) + "\n")
        index_corpus(root / "classifier", root / "corpus.txt", root / "corpus.zarr",
                     chunk_tokens=32, batch=8)
        return Explorer(root / "classifier", corpus=TEXTS, store=root / "corpus.zarr",
                        limits=LIMITS)
    if kind == "classifier":  # the sentiment model's shape: bidirectional, two classes
        path = word_classifier(root / kind, bidirectional=True)
        # an evaluation as `lstmlens evaluate` leaves it, with a NaN JSON cannot carry
        (path / "evaluation.json").write_text(json.dumps({
            "methods": {"lrp": {"aopc": 0.21, "sufficiency": float("nan")}},
            "curves": {"lrp": [0.9, 0.5, float("inf")]}, "better": {"aopc": "higher"},
            "settings": {"steps": 3}, "notes": ["tiny"]}))
        return Explorer(path, corpus=TEXTS, limits=LIMITS)
    if kind == "language_model":
        return Explorer(char_lm(root / kind), corpus=code_pieces(4, 20), limits=LIMITS)
    if kind == "forecaster":
        fc = _forecaster()
        path = lstmlens.save(fc, root / kind, meta={})
        return Explorer(path, corpus=[w.numpy() for w in _windows(fc, B=3)], limits=LIMITS)
    if kind == "translation":
        mt = _translator()
        pair = TokenizerPair(mt.tokenizer["source"], mt.tokenizer["target"])
        path = lstmlens.save(mt, root / kind, tokenizer=pair, meta={})
        return Explorer(path, corpus=["the king saw the woman", "a man went home"],
                        limits=LIMITS)
    return Explorer(_formal(root / kind), n=12, limits=LIMITS)


def _plausible(path: str, ex: Explorer) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies (POST) or queries (GET) a user of the front end could send: near the edges
    of what the model accepts, mostly within the schema, and some it refuses (a lone
    surrogate, integers beyond 64 bits; NaN cannot be sent this way: see ``ONCE_500``)."""
    n = len(ex.corpus)
    text = st.one_of(st.sampled_from([c for c in ex.corpus if isinstance(c, str)] or ["0"]),
                     st.lists(st.sampled_from(WORDS), max_size=30).map(" ".join),
                     st.text(max_size=30), st.sampled_from(ODD_TEXTS))
    item = st.one_of(st.fixed_dictionaries({"text": text}),
                     st.fixed_dictionaries({"sequence": st.integers(0, n + 1)}))
    small = st.integers(0, 12)

    def with_item(**optional: st.SearchStrategy) -> st.SearchStrategy[dict[str, Any]]:
        return st.tuples(item, st.fixed_dictionaries({}, optional=optional)).map(
            lambda t: {**t[0], **t[1]})

    def query(**optional: st.SearchStrategy) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({}, optional=optional)

    methods = ex.methods() + ["no_such_method"]
    labels = (ex.classes() or []) + ["l", "le", "step 1", ""]
    return {
        "/api/explain": with_item(
            methods=st.lists(st.sampled_from(methods), min_size=1, max_size=3, unique=True),
            target=st.one_of(st.integers(-2, 12), st.sampled_from(labels),
                             st.sampled_from(HUGE))),
        "/api/gates": with_item(step=st.integers(0, 30)),
        "/api/match": with_item(
            start=small, end=st.integers(1, 14),
            threshold=st.floats(-1, 1),
            units=st.lists(st.integers(0, 20), max_size=5), min_overlap=st.integers(1, 6),
            top=st.integers(1, 30), context=st.integers(0, 8), key=st.sampled_from(KEYS)),
        "/api/translate": st.fixed_dictionaries({"text": text}),
        "/api/corpus": query(offset=small, limit=st.integers(1, 10)),
        "/api/neurons/units": st.fixed_dictionaries(
            {"feature": st.sampled_from(ex.features() + ["inside_quotes", ""])},
            optional={"k": st.integers(1, 30)}),
        "/api/neurons/contexts": st.tuples(
            st.fixed_dictionaries({"unit": st.integers(0, 20)}),
            query(key=st.sampled_from(KEYS), k=st.integers(1, 20), window=small)).map(
                lambda t: {**t[0], **t[1]}),
        "/api/rules": query(top=st.integers(1, 60)),
        "/api/automaton": query(method=st.sampled_from(["quantize", "lstar"])),
        "/api/forecast": query(sequence=st.integers(0, n + 1), method=st.sampled_from(methods),
                               step=st.integers(0, 4)),
    }.get(path, st.just({}))


def _examples(kind: str, path: str) -> int:
    if kind == "store":
        return EXAMPLES if path in STORE else FEW
    return EXAMPLES if ONLY.get(path, kind) == kind else FEW


@pytest.fixture(scope="module")
def explorers(tmp_path_factory) -> dict[str, Explorer]:
    root = tmp_path_factory.mktemp("server_fuzz")
    return {kind: _explorer(kind, root) for kind in KINDS}


@pytest.fixture(scope="module")
def schemas(explorers) -> dict[str, BaseSchema]:
    """Each kind's app and its own OpenAPI schema, loaded in-process through ASGI."""
    return {kind: schemathesis.openapi.from_asgi("/openapi.json", create_app(ex))
            for kind, ex in explorers.items()}


# Listed here (not read from the schema) so that each gets its own test; a test below
# checks that this is every operation of the schema.
OPERATIONS = [("GET", "/api/model"), ("GET", "/api/corpus"), ("POST", "/api/explain"),
              ("POST", "/api/gates"), ("POST", "/api/match"),
              ("GET", "/api/neurons/saturation"), ("GET", "/api/neurons/units"),
              ("GET", "/api/neurons/contexts"), ("GET", "/api/rules"),
              ("GET", "/api/automaton"), ("GET", "/api/evaluation"),
              ("POST", "/api/translate"), ("GET", "/api/forecast")]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[p for _, p in OPERATIONS])
def test_no_server_error_and_schema_conformance(schemas, explorers, kind, method, path):
    """Requests that fit the schema, that do not, and plausible ones (seeded): never a
    5xx; declared responses fit the schema."""
    operation = schemas[kind][path][method]
    if method == "POST":
        plausible = _plausible(path, explorers[kind]).map(
            lambda b: operation.Case(body=b, media_type="application/json"))
    else:
        plausible = _plausible(path, explorers[kind]).map(lambda q: operation.Case(query=q))
    generated = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE))
    statuses = []
    for cases in (generated, plausible):

        @given(case=cases)
        @settings(max_examples=_examples(kind, path), derandomize=True, deadline=None,
                  database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case):
            statuses.append(case.call_and_validate(checks=CHECKS).status_code)

        fuzz()
    assert all(400 <= s < 500 for s in statuses if s != 200), statuses


def test_server_stays_up_after_the_fuzzing(schemas, explorers):
    """Runs after the fuzzing (pytest keeps file order): the very apps that were fuzzed
    still answer, and still explain."""
    for kind, schema in schemas.items():
        with TestClient(schema.app) as client:
            r = client.get("/api/model")
            assert r.status_code == 200, (kind, r.text)
            assert r.json()["kind"] == explorers[kind].kind
            r = client.post("/api/explain", json={"sequence": 0, "methods": ["occlusion"]})
            assert r.status_code == 200, (kind, r.text)
            assert set(r.json()["methods"]) == {"occlusion"}


@pytest.mark.parametrize("kind", ["classifier", "language_model"])
def test_concurrent_requests_get_their_own_answers(explorers, kind, monkeypatch):
    """Many requests at once (some refused): no 5xx, and each answer is the one the same
    request gets alone, although the server explains concurrent texts in batches."""
    ex = explorers[kind]
    sizes = []
    run_batch = ex._explain_batch

    def recorded(items, *args):
        sizes.append(len(items))
        return run_batch(items, *args)

    monkeypatch.setattr(ex, "_explain_batch", recorded)
    texts = [c for c in ex.corpus if isinstance(c, str)]
    bodies = [{"text": texts[i % len(texts)][:40 - 3 * i] or "a",
               "methods": ["lrp", "occlusion", "grad_x_input"]} for i in range(12)]
    bodies += [{"text": texts[0], "methods": ["lrp"], "target": "no such class"},
               {"text": "", "methods": ["lrp"]}, {"sequence": 10**6}]
    app = create_app(ex)

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await asyncio.gather(*(client.post("/api/explain", json=b)
                                          for b in bodies))

    together = asyncio.run(send_all())
    assert max(sizes) > 1  # some texts were explained in one batch
    with TestClient(app) as client:
        for body, r in zip(bodies, together, strict=True):
            alone = client.post("/api/explain", json=body)
            assert r.status_code == alone.status_code and r.status_code in (200, 400), r.text
            if r.status_code == 400:
                continue
            a, b = r.json(), alone.json()
            assert a["tokens"] == b["tokens"] and a["prediction"] == b["prediction"]
            for m in body["methods"]:
                np.testing.assert_allclose(a["methods"][m]["scores"],
                                           b["methods"][m]["scores"], atol=1e-4)


# Requests that once got a 500: NaN / Infinity and a lone surrogate in the body broke the
# 422 answer itself; a target beyond 64 bits overflowed; kernel SHAP failed on one token.
ONCE_500 = [("/api/match", b'{"sequence": 0, "threshold": NaN}', {422}),
            ("/api/match", b'{"sequence": 0, "threshold": -Infinity}', {422}),
            ("/api/explain", b'{"text": "\\ud800"}', {422}),
            ("/api/explain", b'{"text": "a good film", "target": 100000000000000000000000}',
             {422}),
            ("/api/explain", b'{"text": "a", "methods": ["kernel_shap", "lrp"]}', {200})]


@pytest.mark.parametrize(("path", "body", "status"), ONCE_500)
def test_requests_that_once_got_a_server_error(schemas, path, body, status):
    with TestClient(schemas["classifier"].app) as client:
        r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code in status, r.text
    assert r.json()["detail"] if r.status_code != 200 else r.json()["methods"]["lrp"]["scores"]


def test_the_schema_covers_every_api_route(explorers):
    """The fuzzing above reaches every JSON route: each is in the schema and in
    ``OPERATIONS``."""
    app = create_app(explorers["classifier"])
    routes = {(m, r.path) for r in app.routes if r.path.startswith("/api/")
              for m in r.methods}
    with TestClient(app) as client:
        paths = client.get("/openapi.json").json()["paths"]
    declared = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    assert routes == declared == set(OPERATIONS)
