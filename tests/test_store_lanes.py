"""Documents packed into lanes (the corpus store's pass for language models): the packing,
and every series of every document against ``lstmlens.trace`` of that document alone."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lstmlens
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.models.language_model import CharLanguageModel, LanguageModelConfig
from lstmlens.parts import parts_of
from lstmlens.store_chunk import _lstm_names
from lstmlens.store_lanes import (
    MAX_LANES,
    MIN_LANES,
    STEP_COST,
    Lanes,
    lanes_apply,
    plan_lanes,
    trace_lanes,
)
from lstmlens.workspace import Workspace


@given(st.lists(st.integers(1, 60), min_size=1, max_size=300))
@settings(max_examples=200, deadline=None)
def test_plan_places_every_document_once_without_overlap(lens):
    lens = np.asarray(lens)
    lane, start, B, T = plan_lanes(lens)
    assert 1 <= B <= min(MAX_LANES, len(lens))
    assert T == int((start + lens).max()) and T >= lens.max()
    busy = np.zeros((B, T), np.int64)
    for d in range(len(lens)):
        assert 0 <= lane[d] < B and start[d] >= 0
        busy[lane[d], start[d]:start[d] + lens[d]] += 1
    assert busy.max() == 1 and busy.sum() == lens.sum()  # each step of each lane used once
    # longest-processing-time packing: no lane ends later than the average plus the longest
    assert T <= lens.sum() / B + lens.max()
    # the lane count is the cheapest of those tried; as few lanes as the work fills never
    # costs less
    B0 = min(MAX_LANES, len(lens), -(-int(lens.sum()) // int(lens.max())))
    T0 = plan_lanes_with(lens, B0)
    assert T * (B + STEP_COST) <= T0 * (B0 + STEP_COST)


def plan_lanes_with(lens, B):
    from lstmlens.store_lanes import _pack
    return _pack(lens, np.argsort(-lens, kind="stable").tolist(), B)[2]


def test_documents_of_one_length_get_a_lane_each():
    lane, start, B, T = plan_lanes(np.full(34, 256))
    assert B == 34 and T == 256 and (start == 0).all()


def _lm(layers, torch_seed=0):
    torch.manual_seed(torch_seed)
    return CharLanguageModel(LanguageModelConfig(vocab_size=11, embedding_dim=5,
                                                 hidden_sizes=layers)).eval()


def _clf(bidirectional: bool, pooling: str = "last"):
    torch.manual_seed(3)
    return LSTMClassifier(ClassifierConfig(num_classes=3, vocab_size=11, embedding_dim=5,
                                           hidden_sizes=[6, 4], bidirectional=bidirectional,
                                           pooling=pooling)).eval()


@pytest.mark.parametrize("model", [_lm([7]), _lm([7, 4]), _lm([6, 6, 3]), _clf(True),
                                   _clf(False)], ids=["lm1", "lm2", "lm3", "bi2", "uni2"])
def test_every_series_equals_the_document_traced_alone(model):
    parts = parts_of(model)
    rng = np.random.default_rng(1)
    lens = rng.integers(1, 40, 57)
    lens[5] = 90  # one long document: several short ones share a lane after it
    doc_s = np.concatenate([[0], np.cumsum(lens)])
    toks = torch.from_numpy(rng.integers(1, 11, int(lens.sum())))
    lane, start, B, T = plan_lanes(lens)
    assert B > 1 and len(set(lane.tolist())) < len(lens)  # lanes hold several documents
    got: dict[str, torch.Tensor] = {}
    sel_from, n = 13, int(lens.sum()) - 40  # a stretch cutting documents at both ends

    def dest(key, units):
        assert key not in got
        got[key] = torch.full((n, units), float("nan"))
        return got[key]

    with torch.no_grad():
        top, lanes = trace_lanes(parts, _lstm_names(model), toks, doc_s, sel_from, n,
                                 Workspace(), dest, torch.float32)
    D = 2 if parts.lstms[0].bidirectional else 1
    assert len(got) == 6 * D * sum(m.num_layers for m in parts.lstms)
    last = _lstm_names(model)[id(parts.lstms[-1])]
    top_keys = [f"{last}.layers.{parts.lstms[-1].num_layers - 1}.{d}.hidden"
                for d in ("forward", "backward")[:D]]
    for d in range(len(lens)):
        tr = lstmlens.trace(model, toks[doc_s[d]:doc_s[d + 1]][None])
        want_top = torch.cat([tr[k][0] for k in top_keys], -1)  # (len, D·H)
        torch.testing.assert_close(top[lanes.pos[doc_s[d]:doc_s[d + 1]]], want_top,
                                   atol=1e-6, rtol=1e-5)
        a, b = max(doc_s[d], sel_from), min(doc_s[d + 1], sel_from + n)
        for key, v in got.items():
            if a < b:
                want = tr[key][0, a - doc_s[d]:b - doc_s[d]]
                torch.testing.assert_close(v[a - sel_from:b - sel_from], want, atol=1e-6,
                                           rtol=1e-5, msg=key)


def test_layouts_mirror_each_document():
    lens = np.array([3, 1, 4, 2, 5])
    lanes = Lanes(np.concatenate([[0], np.cumsum(lens)]))
    flip = lanes.flip()
    assert torch.equal(flip[flip], torch.arange(lanes.T * lanes.B))  # its own inverse
    assert torch.equal(flip[torch.from_numpy(lanes.pos)], torch.from_numpy(lanes.rpos))
    # the last token of each document sits where the backward direction starts it
    ends = np.cumsum(lens) - 1
    starts = ends - lens + 1
    np.testing.assert_array_equal(lanes.rpos[ends], lanes.pos[starts])


def test_lanes_serve_token_models_without_projections():
    for model in (_lm([4, 4]), _clf(True), _clf(False, "attention")):
        assert lanes_apply(model, parts_of(model))
    torch.manual_seed(0)
    net = torch.nn.Module()
    net.emb, net.lstm = torch.nn.Embedding(9, 3), torch.nn.LSTM(3, 6, proj_size=2,
                                                                   batch_first=True)
    net.fc = torch.nn.Linear(2, 2)
    wrapped = lstmlens.wrap(net, embedding="emb", lstm="lstm", head="fc")
    assert not lanes_apply(net, wrapped)  # projections: padded batches


def test_few_long_documents_take_the_fused_kernel_path():
    model = _lm([16])
    parts = parts_of(model)
    assert lanes_apply(model, parts, np.array([100] * 40))
    assert not lanes_apply(model, parts, np.array([3000, 2000, 100]))  # a lane or two
    assert not lanes_apply(model, parts, np.array([50] * (MIN_LANES - 1)))
    assert lanes_apply(model, parts, np.array([50] * MIN_LANES))


def test_a_store_of_long_documents_equals_the_traces(tmp_path):
    from lstmlens.modeldir import save
    from lstmlens.store_index import index_corpus
    from lstmlens.tokenizers import Tokenizer

    rng = np.random.default_rng(0)
    words = ["ab", "ba", "abc", "c"]
    lines = [" ".join(rng.choice(words, n)) for n in (400, 30, 350, 2, 12)]
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    tok = Tokenizer("char").fit(lines)
    torch.manual_seed(0)
    lm = CharLanguageModel(LanguageModelConfig(vocab_size=len(tok), embedding_dim=4,
                                               hidden_sizes=[5, 3])).eval()
    save(lm, tmp_path / "lm", tokenizer=tok)
    st = index_corpus(tmp_path / "lm", tmp_path / "c.txt", tmp_path / "s.zarr",
                      dtype="float32", chunk_tokens=2048)
    model = lstmlens.load(tmp_path / "lm")
    for d in range(len(lines)):
        doc = st.document(d)
        tr = lstmlens.trace(model, torch.as_tensor(doc.ids)[None])
        for key in st.keys():
            np.testing.assert_allclose(np.asarray(st[key][doc.start:doc.end]),
                                       tr[key][0].numpy(), atol=1e-6, err_msg=key)


def test_next_token_scores_in_slices_give_the_same_predictions(tmp_path, monkeypatch):
    from lstmlens import store_chunk
    from lstmlens.modeldir import save
    from lstmlens.store_index import index_corpus
    from lstmlens.tokenizers import Tokenizer

    rng = np.random.default_rng(2)
    lines = [" ".join(rng.choice(["ab", "ba", "c", "abc"], int(k))) for k in
             rng.integers(1, 12, 60)]
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    tok = Tokenizer("char").fit(lines)
    torch.manual_seed(1)
    lm = CharLanguageModel(LanguageModelConfig(vocab_size=len(tok), embedding_dim=4,
                                               hidden_sizes=[6])).eval()
    save(lm, tmp_path / "lm", tokenizer=tok)
    monkeypatch.setattr(store_chunk, "HEAD_SLICE", 3 * len(tok))  # three rows at a time
    st = index_corpus(tmp_path / "lm", tmp_path / "c.txt", tmp_path / "s.zarr",
                      chunk_tokens=128)
    model = lstmlens.load(tmp_path / "lm")
    for d in (0, 17, 59):
        doc = st.document(d)
        with torch.no_grad():
            p = torch.softmax(model(torch.as_tensor(doc.ids)[None])[0], -1)  # (T, V)
        np.testing.assert_array_equal(np.asarray(st["predictions/next_token"][doc.start:doc.end]),
                                      p.argmax(-1).numpy())
        np.testing.assert_allclose(
            np.asarray(st["predictions/next_token_probability"][doc.start:doc.end]),
            p.max(-1).values.numpy(), atol=1e-5)


def test_the_command_line_chunk_default_is_the_library_default():
    import inspect

    from lstmlens.cli_index import index_cmd
    from lstmlens.store_index import DEFAULT_CHUNK, index_corpus

    assert inspect.signature(index_cmd).parameters["chunk"].default == DEFAULT_CHUNK
    assert inspect.signature(index_corpus).parameters["chunk_tokens"].default == DEFAULT_CHUNK
