"""explain() for the language model's next token, the forecaster's output steps and the
translation model's output tokens: each checked against the model's own forward pass,
plain references and the conservation laws."""

import copy
import json

import numpy as np
import pytest
import torch
from cd_reference import cd_reference
from lrp_reference import lrp_reference

import lstmlens
from lstmlens.errors import InputError, ModelError
from lstmlens.explaining import explain
from lstmlens.methods.lrp_core import lrp_parts
from lstmlens.models.forecaster import ForecasterConfig, LSTMForecaster
from lstmlens.models.language_model import CharLanguageModel, LanguageModelConfig
from lstmlens.models.seq2seq import Seq2Seq, Seq2SeqConfig, TokenizerPair
from lstmlens.tokenizers import BOS, EOS, PAD, UNK, Tokenizer

# ----------------------------------------------------------------------------- models


def _lm(hidden=(6, 4)):
    torch.manual_seed(0)
    tok = Tokenizer("char", lowercase=False, max_vocab=None).fit(["hello world, abc xyz"])
    lm = CharLanguageModel(LanguageModelConfig(vocab_size=len(tok), embedding_dim=5,
                                               hidden_sizes=list(hidden))).eval()
    lm.tokenizer, lm.meta = tok, {}
    return lm


def _forecaster(relative=True, cycle=12.0):
    torch.manual_seed(1)
    fc = LSTMForecaster(ForecasterConfig(horizon=3, window=6, hidden_sizes=[5, 4], cycle=cycle,
                                         relative=relative)).eval()
    F = fc.config.input_size
    with torch.no_grad():  # standardization that is not the identity
        fc.input_mean.copy_(torch.linspace(0.3, -0.2, F))
        fc.input_std.copy_(torch.linspace(2.0, 0.7, F))
        fc.target_mean.copy_(torch.tensor([0.5, 1.0, 1.5]))
        fc.target_std.copy_(torch.tensor([3.0, 2.0, 4.0]))
    fc.meta = {}
    return fc


def _windows(fc, B=2, T=6):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(B, T, fc.config.input_size, generator=g)
    x[..., 0] += 10.0  # a level far from zero
    return x


def _translator():
    torch.manual_seed(2)
    src = Tokenizer("word").fit(["the king saw the woman", "a man went home"])
    tgt = Tokenizer("word", specials=[PAD, UNK, BOS, EOS]).fit(
        ["le roi vit la femme", "un homme alla chez lui"])
    mt = Seq2Seq(Seq2SeqConfig(src_vocab_size=len(src), tgt_vocab_size=len(tgt),
                               bos_id=tgt.id(BOS), eos_id=tgt.id(EOS), embedding_dim=6,
                               encoder_hidden_size=5, hidden_size=7, attention_size=4,
                               dropout=0.0)).eval()
    with torch.no_grad():  # a greedy translation longer than one token
        mt.out_bias[tgt.id(EOS)] -= 0.5
    mt.tokenizer, mt.meta = {"source": src, "target": tgt}, {}
    return mt


# ----------------------------------------------------------------------------- language model


def test_lm_next_token_target_prediction_and_labels():
    lm = _lm()
    ids = torch.tensor([lm.tokenizer.encode("hello wor")])
    logits = lm(ids)[0, -1].detach()
    a = explain(lm, "hello wor", "grad_x_input")
    assert a.tokens == [list("hello wor")] and a.scores.shape == (1, 9)
    assert int(a.target[0]) == int(logits.argmax())  # default: the predicted next token
    assert torch.allclose(a.prediction[0], torch.softmax(logits, -1), atol=1e-6)
    b = explain(lm, ids, "grad_x_input", target="l")  # a character, through the tokenizer
    assert int(b.target[0]) == lm.tokenizer.id("l") and b.label(int(b.target[0])) == "l"
    assert json.loads(b.to_json())["items"][0]["target"] == "l"
    with pytest.raises(InputError, match="not one of this model's outputs"):
        explain(lm, ids, "cd", target="Q")
    with pytest.raises(InputError, match="target must lie in 0.."):
        explain(lm, ids, "cd", target=len(lm.tokenizer))


def test_lm_cd_conservation_and_slow_reference():
    lm = _lm()
    ids = torch.tensor([lm.tokenizer.encode("abc xyz")])
    logits = lm(ids)[0, -1].detach()
    d = lstmlens.decompose(lm, ids[0], [(0, 6), (2, 4), (6, 6)])
    bias = lm.head.bias.detach()
    assert ((d.relevant + d.irrelevant) - (logits - bias)).abs().max() <= 1e-5
    assert (d.relevant[0] - (logits - bias)).abs().max() <= 1e-5  # whole prefix: everything
    a = explain(lm, ids, "cd", target=3, dtype=torch.float64)
    emb = lm.embedding(ids[0]).detach().double().numpy()
    W = lm.head.weight.detach().double().numpy()
    for t in range(ids.shape[1]):
        rel, _ = cd_reference(lm.lstms, emb, W, t, t)
        assert abs(float(a.scores[0, t]) - rel[3]) <= 1e-8


def test_lm_lrp_conserves_and_matches_reference():
    lm = _lm()
    ids = torch.tensor([lm.tokenizer.encode("hello")])
    lm64 = copy.deepcopy(lm).double()
    target = torch.tensor([lm.tokenizer.id("o")])
    R, initial, score = lrp_parts(lm64.explainable_parts(), ids, torch.tensor([5]), target,
                                  bias_factor=1.0, dtype=torch.float64)
    want = lm64(ids)[0, -1, target].detach()
    assert abs(float(R.sum() + initial[0] - want)) <= 1e-6
    a = explain(lm, ids, "lrp", target=target, bias_factor=1.0, dtype=torch.float64)
    assert float(a.delta[0]) <= 1e-6
    one = _lm(hidden=(6,))  # one LSTM: the plain reference reads it
    b = explain(one, ids, "lrp", target=target, dtype=torch.float64)
    ref, _, _ = lrp_reference(one.lstms[0], one.embedding(ids[0]).detach().double().numpy(),
                              one.head.weight.detach().double().numpy(),
                              one.head.bias.detach().double().numpy(), int(target[0]))
    assert np.abs(b.scores[0].numpy() - ref).max() <= 1e-8


def test_lm_integrated_gradients_equal_captum():
    from captum.attr import IntegratedGradients

    lm = _lm()
    ids = torch.tensor([lm.tokenizer.encode("abc"), lm.tokenizer.encode("xyz")])
    a = explain(lm, ids, "integrated_gradients", steps=32)
    assert float(a.delta.max()) <= 1e-3

    def f(e):  # the LM's own modules, read at the last step
        h = e
        for lstm in lm.lstms:
            h, _ = lstm(h)
        return lm.head(h[:, -1])

    ref = IntegratedGradients(f).attribute(lm.embedding(ids).detach(), baselines=0.0,
                                           target=a.target, n_steps=32, method="gausslegendre")
    assert (a.scores - ref.sum(-1)).abs().max() <= 1e-6


# ----------------------------------------------------------------------------- forecaster


def test_forecaster_prediction_is_the_forecast_and_targets_are_steps():
    fc = _forecaster()
    x = _windows(fc)
    L = torch.tensor([6, 4])
    a = explain(fc, x, "cd", lengths=L)
    assert torch.allclose(a.prediction, fc(x, L).detach(), atol=1e-5)  # values, not softmax
    assert a.target.tolist() == [0, 0] and a.scores.shape == (2, 6, 3)
    assert (a.scores[1, 4:] == 0).all()
    doc = json.loads(a.to_json())
    assert "values" in doc["items"][0] and "probabilities" not in doc["items"][0]
    assert doc["items"][0]["target"] == "t+1" and "value =" in a.to_html()
    assert explain(fc, x, "saliency", target=2).target.tolist() == [2, 2]
    with pytest.raises(InputError, match=r"0..2 \(the model forecasts 3 steps\)"):
        explain(fc, x, "cd", target=3)


@pytest.mark.parametrize("relative", [True, False])
def test_forecaster_cd_conserves_the_forecast_change(relative):
    fc = _forecaster(relative=relative)
    x = _windows(fc)
    y = fc(x).detach()
    level = x[:, -1, 0] if relative else torch.zeros(2)
    bias = fc.target_std * fc.head.bias.detach() + fc.target_mean  # the read-out's offset
    d = lstmlens.decompose(fc, x, [(0, 0, 5), (0, 1, 3), (1, 5, 5)])
    want = (y - level[:, None] - bias)[d.rows]
    assert ((d.relevant + d.irrelevant) - want).abs().max() <= 1e-5
    assert (d.relevant[0] - want[0]).abs().max() <= 1e-5
    a = explain(fc, x, "cd", target=1)
    assert float(a.delta.max()) <= 1e-5
    # the relevant part against the slow float64 reference, on the folded read-out
    fc64 = copy.deepcopy(fc).double()
    parts = fc64.explainable_parts()
    d64 = lstmlens.decompose(fc64, x.double(), [(1, 2, 4)], dtype="float64")
    emb = parts.embed(x.double())[1].detach().numpy()
    rel, irr = cd_reference(fc64.lstms, emb, parts.head.weight.detach().numpy(), 2, 4)
    assert np.abs(d64.relevant[0].numpy() - rel).max() <= 1e-8
    assert np.abs(d64.irrelevant[0].numpy() - irr).max() <= 1e-8


def test_forecaster_decompose_reads_padded_windows_as_the_model_does():
    fc = _forecaster()
    x = _windows(fc)
    lengths = torch.tensor([6, 4])
    x[1, 4:] = 99.0  # padding: never read
    y = fc(x, lengths).detach()
    level = x[torch.arange(2), lengths - 1, 0]
    bias = fc.target_std * fc.head.bias.detach() + fc.target_mean
    d = lstmlens.decompose(fc, x, [(0, 1, 3), (1, 0, 2)], lengths=lengths)
    want = (y - level[:, None] - bias)[d.rows]
    assert ((d.relevant + d.irrelevant) - want).abs().max() <= 1e-5


def test_forecaster_lrp_conserves_in_float64():
    fc64 = copy.deepcopy(_forecaster()).double()
    x = _windows(fc64).double()
    L = torch.tensor([6, 5])
    parts = fc64.explainable_parts()
    r, level = parts.preprocess(x, L)
    target = torch.tensor([2, 1])
    R, initial, _ = lrp_parts(parts, r, L, target, bias_factor=1.0, dtype=torch.float64)
    want = (fc64(x, L) - level[:, None]).detach()[torch.arange(2), target]
    assert (R.sum((1, 2)) + initial - want).abs().max() <= 1e-6
    a = explain(fc64, x, "lrp", target=target, lengths=L, bias_factor=1.0, dtype="float64")
    assert float(a.delta.max()) <= 1e-6


def test_forecaster_integrated_gradients_equal_captum():
    from captum.attr import IntegratedGradients

    fc = _forecaster()
    x = _windows(fc)
    a = explain(fc, x, "integrated_gradients", target=1, steps=40)
    assert float(a.delta.max()) <= 1e-3
    level = x[:, -1, 0]
    r = x.clone()
    r[..., 0] -= level[:, None]  # the window relative to its last value

    def change(rr):  # the model's own forecast minus the window's last value
        xx = rr.clone()
        xx[..., 0] = xx[..., 0] + level.repeat(rr.shape[0] // 2)[:, None]
        return fc(xx) - xx[:, -1:, 0]

    ref = IntegratedGradients(change).attribute(r, baselines=0.0, target=1, n_steps=40,
                                                method="gausslegendre")
    assert (a.scores - ref).abs().max() <= 1e-5


# ----------------------------------------------------------------------------- translation


def _teacher_forced_grad(mt, src, tgt_in, token, emb):
    """∂ logit[token] at the last step of tgt_in / ∂ source embeddings, by plain autograd
    through the model's own teacher-forced forward (the embedding output replaced)."""
    e = emb.clone().requires_grad_(True)
    hook = mt.src_embedding.register_forward_hook(lambda m, i, o: e)
    try:
        logits, _ = mt(src, torch.tensor([src.shape[1]]), tgt_in)
    finally:
        hook.remove()
    out = logits[0, -1, token]
    (g,) = torch.autograd.grad(out, e)
    return g, float(out.detach())


def test_translation_gradients_equal_plain_autograd():
    mt = _translator()
    text = "the king saw the woman"
    a = explain(mt, text, "saliency", target=1)
    tok = mt.tokenizer
    src = torch.tensor([tok["source"].encode(text)])
    out_ids = [tok["target"].id(w) for w in a.params["output_tokens"]]
    tgt_in = torch.tensor([[mt.config.bos_id, out_ids[0]]])
    emb = mt.src_embedding(src).detach()
    g, _ = _teacher_forced_grad(mt, src, tgt_in, out_ids[1], emb)
    assert int(a.target[0]) == out_ids[1] and a.tokens == [text.split()]
    assert (a.scores[0] - g[0].norm(dim=-1)).abs().max() <= 1e-6
    gx = explain(mt, text, "grad_x_input", target=1)
    assert (gx.scores[0] - (g * emb)[0].sum(-1)).abs().max() <= 1e-6
    # integrated gradients: Gauss–Legendre nodes on [0, 1], one plain gradient per node
    nodes, weights = np.polynomial.legendre.leggauss(20)
    total = torch.zeros_like(emb)
    for s, w in zip((nodes + 1) / 2, weights / 2, strict=True):
        total += float(w) * _teacher_forced_grad(mt, src, tgt_in, out_ids[1], float(s) * emb)[0]
    ig = explain(mt, text, "integrated_gradients", target=1, steps=20)
    assert (ig.scores[0] - (emb * total)[0].sum(-1)).abs().max() <= 1e-5
    assert float(ig.delta[0]) <= 1e-3


def test_translation_follows_the_greedy_translation_and_teacher_forcing():
    from lstmlens.decoding import greedy_decode

    mt = _translator()
    text = "a man went home"
    src = mt.tokenizer["source"].encode(text)
    hyp = greedy_decode(mt, [src])[0]
    out = hyp.ids + ([mt.config.eos_id] if hyp.finished else [])
    for k in range(len(out)):  # the explained token is the model's own choice at step k
        a = explain(mt, text, "grad_x_input", target=k)
        assert int(a.target[0]) == out[k] == int(a.prediction[0].argmax())
        assert a.params["output_position"] == k
    words = "un homme alla"
    b = explain(mt, text, "occlusion", target=2, translation=words)
    assert b.params["output_token"] == "alla" and b.params["teacher_forced"]
    assert int(b.target[0]) == mt.tokenizer["target"].id("alla")
    # occlusion: plain leave-one-out through the model's own forward
    tgt_in = torch.tensor([[mt.config.bos_id] + mt.tokenizer["target"].encode("un homme")])
    emb = mt.src_embedding(torch.tensor([src])).detach()
    _, full = _teacher_forced_grad(mt, torch.tensor([src]), tgt_in, int(b.target[0]), emb)
    for t in range(len(src)):
        masked = emb.clone()
        masked[0, t] = 0
        _, v = _teacher_forced_grad(mt, torch.tensor([src]), tgt_in, int(b.target[0]), masked)
        assert abs(float(b.scores[0, t]) - (full - v)) <= 1e-5
    with pytest.raises(InputError, match="output position in 0..3"):
        explain(mt, text, "saliency", target=4, translation=words)


def test_translation_attention_and_refusals():
    mt = _translator()
    text = "the king saw the woman"
    a = explain(mt, text, "attention", target=2)
    tok = mt.tokenizer
    src = torch.tensor([tok["source"].encode(text)])
    out_ids = [tok["target"].id(w) for w in a.params["output_tokens"]]
    tgt_in = torch.tensor([[mt.config.bos_id, *out_ids[:2]]])
    _, alpha = mt(src, torch.tensor([5]), tgt_in)
    assert (a.scores[0] - alpha[0, 2]).abs().max() <= 1e-6
    for method in ("cd", "lrp", "cell_decomposition", "additive_cell_decomposition"):
        with pytest.raises(ModelError, match="cannot explain the encoder–decoder's output"):
            explain(mt, text, method)
    with pytest.raises(InputError, match="one source sentence at a time"):
        explain(mt, ["a man", "the king"], "saliency")
    with pytest.raises(InputError, match="translation models only"):
        explain(_lm(), "abc", "saliency", translation="x")
    with pytest.raises(ModelError, match="depend on the source sentence"):
        lstmlens.decompose(mt, src, [(0, 1)])


# ----------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain_models")
    lm = _lm()
    fc = _forecaster()
    mt = _translator()
    tok = mt.tokenizer
    history = [10.0, 10.5, 11.2, 10.9, 11.4, 11.8]
    return {
        "lm": lstmlens.save(lm, root / "lm", tokenizer=lm.tokenizer, meta={}),
        "fc": lstmlens.save(fc, root / "fc", meta={"history": history, "history_start": 40.0}),
        "mt": lstmlens.save(mt, root / "mt", tokenizer=TokenizerPair(tok["source"],
                                                                     tok["target"]), meta={}),
    }


def _run(args):
    from typer.testing import CliRunner

    from lstmlens.cli import app
    return CliRunner().invoke(app, ["explain", *map(str, args)])


def test_cli_explains_the_next_character(model_dirs):
    r = _run([model_dirs["lm"], "hello wor", "--method", "lrp", "--target", "l", "--json"])
    assert r.exit_code == 0, r.output
    item = json.loads(r.stdout)["attributions"][0]["items"][0]
    assert item["target"] == "l" and item["tokens"] == list("hello wor")
    r = _run([model_dirs["lm"], "hello wor", "--method", "cd"])
    assert r.exit_code == 0 and "explaining the next character" in r.stdout, r.output


def test_cli_explains_a_forecast_step(model_dirs, tmp_path):
    fc = lstmlens.load(model_dirs["fc"])
    r = _run([model_dirs["fc"], "history", "--method", "cd", "--target", "2", "--json"])
    assert r.exit_code == 0, r.output
    item = json.loads(r.stdout)["attributions"][0]["items"][0]
    history = np.asarray(fc.meta["history"])
    x = torch.from_numpy(fc.features(history, 40.0 + np.arange(6))[None])
    assert np.allclose(item["values"], fc(x)[0].tolist(), atol=1e-5)  # the forecast itself
    assert item["target"] == "t+3" and np.asarray(item["scores"]).shape == (6, 3)
    window = tmp_path / "w.npy"
    np.save(window, x[0].numpy())
    r = _run([model_dirs["fc"], str(window), "--method", "integrated_gradients"])
    assert r.exit_code == 0 and "explaining output step 0 (t+1): forecast" in r.stdout, r.output
    for args, msg in [(["history", "--target", "3"], "the model forecasts 3 steps"),
                      (["test:0"], "no built-in series")]:
        r = _run([model_dirs["fc"], *args])
        assert r.exit_code == 1 and msg in r.output, r.output


def test_cli_explains_a_translation_token(model_dirs):
    text = "the king saw the woman"
    r = _run([model_dirs["mt"], text, "--method", "integrated_gradients", "--target", "1",
              "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)["attributions"][0]
    assert doc["params"]["output_position"] == 1 and doc["items"][0]["tokens"] == text.split()
    r = _run([model_dirs["mt"], text, "--all", "--translation", "le roi vit", "--target", "2"])
    assert r.exit_code == 0, r.output
    assert "explaining output token 2 'vit'" in r.stdout and "skipped cd" in r.stdout
    assert "attention" in r.stdout and "occlusion" in r.stdout
    r = _run([model_dirs["mt"], text, "--target", "9", "--translation", "le roi"])
    assert r.exit_code == 1 and "output position in 0..2" in r.output


def test_wrapped_regression_module_explains_its_values():
    from torch import nn

    class Regressor(nn.Module):  # a user's own module: fc(lstm(x)[0][:, -1])
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(2, 5, batch_first=True)
            self.fc = nn.Linear(5, 2)

        def forward(self, x):
            return self.fc(self.lstm(x)[0][:, -1])

    net = Regressor().eval()
    parts = lstmlens.wrap(net, lstm="lstm", head="fc", outputs="values")
    x = torch.randn(3, 6, 2)
    a = explain(parts, x, "lrp")
    assert torch.allclose(a.prediction, net(x).detach(), atol=1e-6) and a.target.tolist() == [0] * 3
    with pytest.raises(ModelError, match="outputs must be 'classes' or 'values'"):
        lstmlens.wrap(net, lstm="lstm", head="fc", outputs="probabilities")
