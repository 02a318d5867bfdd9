"""LSTMClassifier: variants, pooling, padding invariance, standardization, validation, and
what ``lstmlens.trace`` records of it.

Tolerances: float32 comparisons of the same computation done two ways (alone vs. padded in
a batch, trace vs. ``encode``) use ``atol=1e-5``; sums of attention weights ``1e-6``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lstmlens
from lstmlens import ClassifierConfig, InputError, LSTMClassifier, ModelFormatError
from lstmlens.models import build_model
from lstmlens.weights import SERIES

ATOL = 1e-5

VARIANTS = {
    "features": dict(input_size=5),
    "features-bi": dict(input_size=5, bidirectional=True),
    "features-attention": dict(input_size=5, pooling="attention"),
    "features-bi-attention": dict(input_size=5, bidirectional=True, pooling="attention"),
    "tokens": dict(vocab_size=20, embedding_dim=6),
    "tokens-bi-attention": dict(vocab_size=20, embedding_dim=6, bidirectional=True,
                                pooling="attention"),
}
LENGTHS = [7, 3, 1, 5]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is as fast as two, and does not slow down a hundredfold when
    another process is using the cores (OpenMP threads waiting on each other)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def build(**kw) -> LSTMClassifier:
    kw.setdefault("hidden_sizes", [8, 6])
    return LSTMClassifier(ClassifierConfig(num_classes=3, **kw)).eval()


def sequences(model: LSTMClassifier, lengths=LENGTHS, seed=0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    if model.input_kind == "tokens":
        return [torch.randint(1, model.config.vocab_size, (t,), generator=g) for t in lengths]
    return [torch.randn(t, model.config.input_size, generator=g) for t in lengths]


def padded(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    x, lengths = lstmlens.batching.pad_batch(seqs)
    return x, lengths


@pytest.fixture(params=list(VARIANTS))
def variant(request) -> tuple[str, LSTMClassifier]:
    return request.param, build(**VARIANTS[request.param])


# --------------------------------------------------------------------- shapes


def test_variants_run_and_give_logits(variant):
    name, model = variant
    x, lengths = padded(sequences(model))
    logits = model(x, lengths)
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    assert model.input_kind == ("tokens" if name.startswith("tokens") else "features")
    D = 2 if model.config.bidirectional else 1
    assert [m.bidirectional for m in model.lstms] == [D == 2] * 2
    assert model.lstms[1].input_size == 8 * D  # the second LSTM reads the first's outputs
    assert (model.attention is not None) == name.endswith("attention")
    probs = model.predict_proba(x, lengths)
    torch.testing.assert_close(probs.sum(1), torch.ones(4), atol=1e-6, rtol=0)


def test_seed_section5_shape_builds_and_runs():
    """The seed's §5: LSTM(128, return_sequences) → LSTM(64) → Dense(10), input 100."""
    model = LSTMClassifier(ClassifierConfig(num_classes=10, input_size=100,
                                            hidden_sizes=[128, 64])).eval()
    assert [(m.input_size, m.hidden_size) for m in model.lstms] == [(100, 128), (128, 64)]
    assert (model.head.in_features, model.head.out_features) == (64, 10)
    n_params = sum(p.numel() for p in model.parameters())
    lstm_params = 4 * 128 * (100 + 128 + 2) + 4 * 64 * (128 + 64 + 2)  # two biases each
    assert n_params == lstm_params + 64 * 10 + 10
    x = torch.randn(2, 9, 100)
    assert model(x).shape == (2, 10)
    tr = lstmlens.trace(model, x, lengths=[9, 4])
    assert tr["lstms.0.layers.0.forward.cell"].shape == (2, 9, 128)
    assert tr["lstms.1.layers.0.forward.hidden"].shape == (2, 9, 64)


# --------------------------------------------------------- padding invariance


def test_padding_invariance(variant):
    """Each sequence's logits are the same alone and right-padded in a batch with lengths."""
    _, model = variant
    seqs = sequences(model)
    x, lengths = padded(seqs)
    batched = model(x, lengths)
    for i, s in enumerate(seqs):
        alone = model(s[None])  # no padding, no lengths
        torch.testing.assert_close(batched[i], alone[0], atol=ATOL, rtol=0)


def test_padding_values_do_not_matter(variant):
    _, model = variant
    x, lengths = padded(sequences(model))
    junk = x.clone()
    pad = torch.arange(x.shape[1])[None, :] >= lengths[:, None]
    junk[pad] = 7 if model.input_kind == "tokens" else 123.0
    torch.testing.assert_close(model(junk, lengths), model(x, lengths), atol=ATOL, rtol=0)


def test_without_lengths_padding_is_read():
    """The control for the invariance test: without lengths, padding changes the logits."""
    model = build(input_size=5)
    x, lengths = padded(sequences(model))
    assert not torch.allclose(model(x)[1], model(x, lengths)[1], atol=1e-3)


# ------------------------------------------------------------------ attention


@pytest.mark.parametrize("name", [n for n in VARIANTS if n.endswith("attention")])
def test_attention_weights(name):
    model = build(**VARIANTS[name])
    x, lengths = padded(sequences(model))
    logits, alpha = model(x, lengths, return_attention=True)
    assert alpha.shape == (4, x.shape[1])
    valid = torch.arange(x.shape[1])[None, :] < lengths[:, None]
    torch.testing.assert_close((alpha * valid).sum(1), torch.ones(4), atol=1e-6, rtol=0)
    assert (alpha[~valid] == 0).all()
    assert (alpha[valid] > 0).all()
    assert alpha[2, 0] == 1  # a one-step sequence puts all its weight on that step
    torch.testing.assert_close(logits, model(x, lengths), atol=0, rtol=0)


def test_last_pooling_returns_no_attention():
    model = build(input_size=5)
    x, lengths = padded(sequences(model))
    logits, alpha = model(x, lengths, return_attention=True)
    assert alpha is None and logits.shape == (4, 3)


# ------------------------------------------------------------ standardization


def test_standardization_buffers():
    model = build(input_size=3, standardize=True)
    sd = model.state_dict()
    assert sd["input_mean"].tolist() == [0, 0, 0] and sd["input_std"].tolist() == [1, 1, 1]
    assert "input_mean" not in dict(model.named_parameters())  # buffers, not trained
    rng = np.random.default_rng(0)
    train = [rng.normal(loc=[1, -2, 5], scale=[1, 3, 0.5], size=(int(t), 3)).astype(np.float32)
             for t in rng.integers(5, 20, size=40)]
    model.fit_standardization(train)
    frames = np.concatenate(train)
    np.testing.assert_allclose(model.input_mean.numpy(), frames.mean(0), atol=1e-5)
    np.testing.assert_allclose(model.input_std.numpy(), frames.std(0, ddof=1), rtol=1e-5)
    # the model standardizes its inputs: same logits as an unstandardized twin on (x-μ)/σ
    twin = build(input_size=3)
    twin.load_state_dict({k: v for k, v in model.state_dict().items()
                          if not k.startswith("input_")})
    x = torch.as_tensor(train[0])[None]
    z = (x - model.input_mean) / model.input_std
    torch.testing.assert_close(model(x), twin(z), atol=ATOL, rtol=0)


def test_standardization_edge_cases():
    model = build(input_size=2, standardize=True)
    model.fit_standardization([np.array([[1.0, 2.0]], np.float32)])  # one frame: no spread
    assert model.input_std.tolist() == [1.0, 1.0] and model.input_mean.tolist() == [1.0, 2.0]
    with pytest.raises(InputError, match=r"at least one training sequence"):
        model.fit_standardization([])
    with pytest.raises(InputError, match=r"1 NaN/inf"):
        model.fit_standardization([np.array([[1.0, np.nan], [2.0, 3.0]])])
    with pytest.raises(InputError, match=r"\[time, 2\]"):
        model.fit_standardization([np.ones((3, 4))])
    with pytest.raises(InputError, match=r"standardize=False"):
        build(input_size=2).fit_standardization([np.ones((3, 2))])
    assert "input_mean" not in build(input_size=2).state_dict()


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kw,pattern",
    [
        (dict(num_classes=3), r"exactly one of input_size.*vocab_size"),
        (dict(num_classes=3, input_size=4, vocab_size=9), r"exactly one of input_size"),
        (dict(num_classes=1, input_size=4), r"num_classes must be a whole number ≥ 2"),
        (dict(num_classes=3, input_size=4, hidden_sizes=[]), r"at least one LSTM layer"),
        (dict(num_classes=3, input_size=4, hidden_sizes=[8, 0]), r"at least one LSTM layer"),
        (dict(num_classes=3, input_size=4, hidden_sizes="8"), r"hidden_sizes must be a list"),
        (dict(num_classes=3, input_size=4, hidden_sizes=[2.5]), r"hidden_sizes must be a list"),
        (dict(num_classes=3, input_size=4, pooling="max"), r"'last' or 'attention'.*'max'"),
        (dict(num_classes=3, input_size=0), r"input_size must be a whole number ≥ 1, got 0"),
        (dict(num_classes=3, input_size="4"), r"input_size must be a whole number"),
        (dict(num_classes=3, vocab_size=1), r"vocab_size must be a whole number ≥ 2"),
        (dict(num_classes=3, vocab_size=9, embedding_dim=0), r"embedding_dim must be"),
        (dict(num_classes=3, input_size=4, dropout=1.5), r"dropout must be a number in \[0, 1\)"),
    ],
)
def test_config_validation(kw, pattern):
    with pytest.raises(InputError, match=pattern):
        ClassifierConfig(**kw)
    with pytest.raises(InputError, match=pattern):
        LSTMClassifier(kw)  # the dict form validates the same way


def test_config_dict_unknown_and_missing_settings():
    with pytest.raises(InputError, match=r"unknown classifier setting\(s\) \['hiden'\]; "
                                         r"accepted: \[.*'hidden_sizes'"):
        LSTMClassifier(dict(num_classes=3, input_size=4, hiden=[3]))
    with pytest.raises(InputError, match=r"incomplete.*num_classes"):
        LSTMClassifier(dict(input_size=4))
    with pytest.raises(InputError, match=r"ClassifierConfig or a dict, got list"):
        LSTMClassifier([3, 4])


def test_build_model_errors_are_format_errors():
    with pytest.raises(ModelFormatError,
                       match=r"unknown model kind 'gru'; this lstmlens knows \[.*'classifier'"):
        build_model("gru", {})
    with pytest.raises(ModelFormatError, match=r"invalid: num_classes must be"):
        build_model("classifier", dict(num_classes=0, input_size=3))
    with pytest.raises(ModelFormatError, match=r"must be a JSON object, got list"):
        build_model("classifier", [1])


def test_config_round_trips_through_dict(variant):
    _, model = variant
    again = LSTMClassifier(model.config_dict())
    assert again.config == model.config


# --------------------------------------------------------------- check_inputs


def test_check_inputs_tokens():
    model = build(vocab_size=10, embedding_dim=4)
    with pytest.raises(InputError, match=r"token ids must lie in 0..9"):
        model(torch.tensor([[1, 10]]))
    with pytest.raises(InputError, match=r"token ids must lie in 0..9"):
        model(torch.tensor([[-1, 2]]))
    with pytest.raises(InputError, match=r"token ids \[batch, time\], got torch.float32"):
        model(torch.tensor([[1.0, 2.0]]))
    with pytest.raises(InputError, match=r"token ids \[batch, time\], got torch.bool"):
        model(torch.tensor([[True, False]]))
    with pytest.raises(InputError, match=r"token ids \[batch, time\], got torch.int64 \(1, 2, 3\)"):
        model(torch.ones(1, 2, 3, dtype=torch.long))
    with pytest.raises(InputError, match=r"inputs are empty \(shape \(0, 2\)\)"):
        model(torch.ones(0, 2, dtype=torch.long))
    assert model(np.array([[1, 9], [3, 0]])).shape == (2, 3)  # numpy ids are fine


def test_check_inputs_features():
    model = build(input_size=5)
    with pytest.raises(InputError, match=r"float features \[batch, time, 5\], got torch.float32 "
                                         r"\(2, 3, 4\)"):
        model(torch.randn(2, 3, 4))
    with pytest.raises(InputError, match=r"float features.*torch.int64"):
        model(torch.ones(2, 3, 5, dtype=torch.long))
    with pytest.raises(InputError, match=r"float features.*\(3, 5\)"):
        model(torch.randn(3, 5))
    # float64 numpy features are computed in the model's float32
    x = np.random.default_rng(0).normal(size=(2, 3, 5))
    torch.testing.assert_close(model(x), model(torch.as_tensor(x, dtype=torch.float32)),
                               atol=0, rtol=0)


# ----------------------------------------------------------------------- trace


def expected_keys(model: LSTMClassifier) -> set[str]:
    dirs = ["forward", "backward"] if model.config.bidirectional else ["forward"]
    return {f"lstms.{i}.layers.0.{d}.{s}" for i in range(len(model.lstms)) for d in dirs
            for s in SERIES}


def test_trace_keys_and_last_hidden_match_encode(variant):
    _, model = variant
    x, lengths = padded(sequences(model))
    tr = lstmlens.trace(model, x, lengths)
    assert set(tr.keys()) == expected_keys(model)
    assert "lstms.0.layers.0.forward.forget_gate" in tr
    assert tr.mask.tolist() == (torch.arange(x.shape[1])[None] < lengths[:, None]).tolist()
    last = len(model.lstms) - 1
    hidden = tr[f"lstms.{last}.layers.0.forward.hidden"]
    if model.config.bidirectional:
        hidden = torch.cat([hidden, tr[f"lstms.{last}.layers.0.backward.hidden"]], dim=2)
    with torch.no_grad():
        enc = model.encode(x, lengths)
    assert hidden.shape == enc.shape
    torch.testing.assert_close(hidden, enc, atol=ATOL, rtol=0)
    torch.testing.assert_close(tr.output, model(x, lengths), atol=0, rtol=0)
    for key in tr.keys():  # zeros at padded steps
        assert (tr[key][~tr.mask] == 0).all(), key


def test_trace_float64(variant):
    _, model = variant
    x, lengths = padded(sequences(model))
    tr = lstmlens.trace(model, x, lengths, dtype="float64")
    assert all(v.dtype == torch.float64 for _, v in tr.items())
    with torch.no_grad():
        enc = model.encode(x, lengths).double()
    last = len(model.lstms) - 1
    fwd = tr[f"lstms.{last}.layers.0.forward.hidden"]
    H = model.config.hidden_sizes[-1]
    torch.testing.assert_close(fwd, enc[..., :H], atol=ATOL, rtol=0)


def test_trace_leaves_training_mode_alone():
    model = build(input_size=5)
    model.train()
    x, lengths = padded(sequences(model))
    lstmlens.trace(model, x, lengths)
    assert model.training and all(m.training for m in model.modules())
