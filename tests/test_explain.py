"""explain(): a contract test over every registered method and model kind, plus each
method's own check (Captum parity, completeness, slow references)."""

import json

import numpy as np
import pytest
import torch
from user_net import UserNet

import lstmlens
from lstmlens.errors import InputError, ModelError
from lstmlens.explaining import explain
from lstmlens.methods import method_names
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.models.forecaster import ForecasterConfig, LSTMForecaster
from lstmlens.models.language_model import CharLanguageModel, LanguageModelConfig
from lstmlens.models.seq2seq import Seq2Seq, Seq2SeqConfig
from lstmlens.parts import wrap
from lstmlens.tokenizers import Tokenizer


def _models():
    torch.manual_seed(0)
    tok = LSTMClassifier(ClassifierConfig(num_classes=3, vocab_size=30, embedding_dim=5,
                                          hidden_sizes=[8, 6]))
    att = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=30, embedding_dim=5,
                                          hidden_sizes=[6], bidirectional=True,
                                          pooling="attention"))
    feat = LSTMClassifier(ClassifierConfig(num_classes=3, input_size=4, hidden_sizes=[8],
                                           standardize=True))
    user = wrap(UserNet(30, 6, 8).eval(), embedding="emb", lstm="lstm", head="fc")
    lm = CharLanguageModel(LanguageModelConfig(vocab_size=30, embedding_dim=5,
                                               hidden_sizes=[6, 4]))
    fc = LSTMForecaster(ForecasterConfig(horizon=2, window=7, hidden_sizes=[6], cycle=12.0))
    mt = Seq2Seq(Seq2SeqConfig(src_vocab_size=30, tgt_vocab_size=20, embedding_dim=6,
                               encoder_hidden_size=5, hidden_size=7, attention_size=4,
                               dropout=0.0))
    ids = torch.randint(1, 30, (3, 7))
    ids[1, 5:] = 0
    ids[2, 2:] = 0
    L = torch.tensor([7, 5, 2])
    return {"tokens": (tok.eval(), ids, L), "attention": (att.eval(), ids, L),
            "features": (feat.eval(), torch.randn(3, 7, 4), L),
            "user": (user, ids, torch.tensor([7, 7, 7])),
            "language_model": (lm.eval(), ids, L),
            "forecaster": (fc.eval(), torch.randn(3, 7, 3) + 5.0, L),
            "seq2seq": (mt.eval(), ids[:1], L[:1])}  # one source sentence at a time


MODELS = _models()
# (method, kind) pairs that refuse, and the part the refusal must name
REFUSED = {("attention", "tokens"): "no attention", ("attention", "features"): "no attention",
           ("attention", "user"): "no attention",
           ("attention", "language_model"): "no attention",
           ("attention", "forecaster"): "no attention",
           ("cell_decomposition", "attention"): "bidirectional",
           ("additive_cell_decomposition", "attention"): "bidirectional",
           **{(m, "seq2seq"): "encoder–decoder's output" for m in
              ("cd", "lrp", "cell_decomposition", "additive_cell_decomposition")}}
DELTA_TOL = {"cd": 1e-5, "integrated_gradients": 1e-3, "cell_decomposition": 1e-5,
             "additive_cell_decomposition": 1e-5}


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("method", method_names())
def test_contract(kind, method):
    model, x, L = MODELS[kind]
    opts = {"samples": 8} if method in ("shapley_sampling", "kernel_shap") else {}
    try:
        a = explain(model, x, method, lengths=L, **opts)
    except ModelError as e:  # a method may refuse a model, saying why (naming the part)
        assert "cannot explain this model" in str(e)
        assert (method, kind) in REFUSED and REFUSED[method, kind] in str(e)
        return
    assert (method, kind) not in REFUSED
    B, T = x.shape[:2]
    want = (B, T) if x.dim() == 2 else (B, T, x.shape[-1])
    assert tuple(a.scores.shape) == want and a.method == method
    assert torch.isfinite(a.scores).all()
    pad = torch.arange(T)[None, :] >= L[:, None]
    assert (a.token_scores()[pad] == 0).all()
    assert a.scores.abs().sum() > 0
    assert a.prediction.shape[0] == B
    if a.outputs == "values":  # a forecast: the model's own output values, not a softmax
        assert torch.allclose(a.prediction, model(x, L).detach(), atol=1e-5)
    else:
        assert torch.allclose(a.prediction.sum(-1), torch.ones(B), atol=1e-5)
    if method in DELTA_TOL:
        assert a.delta is not None and float(a.delta.max()) <= DELTA_TOL[method]
    doc = json.loads(a.to_json())
    assert len(doc["items"]) == B and len(doc["items"][-1]["scores"]) == int(L[-1])


def test_errors():
    model, x, L = MODELS["tokens"]
    with pytest.raises(InputError, match="unknown method 'nope'.*cd.*lrp"):
        explain(model, x, "nope")
    with pytest.raises(InputError, match="target must lie in 0..2"):
        explain(model, x, "cd", target=3)
    with pytest.raises(InputError, match="empty"):
        explain(model, torch.zeros(1, 0, dtype=torch.long), "cd")
    with pytest.raises(InputError, match="no tokenizer"):
        explain(model, "some text", "cd")
    with pytest.raises(InputError, match="token ids must lie"):
        explain(model, torch.tensor([[1, 99]]), "cd")
    with pytest.raises(ModelError, match="wrap it first"):
        explain(UserNet(30, 6, 8), x, "cd")


def test_text_input_tokens_and_html_escaping():
    model, _, _ = MODELS["tokens"]
    tok = Tokenizer("word").fit(["a good <script>alert(1)</script> film", "bad"])
    model.tokenizer = tok
    try:
        a = explain(model, "a good <script> film", "lrp")
        assert a.tokens[0][:3] == ["a", "good", "<"]
        page = a.to_html()
        assert "<script>" not in page and "&lt;" in page
        with pytest.raises(InputError, match="unknown"):
            explain(model, "zzz qqq", "cd")
        with pytest.raises(InputError, match="empty"):
            explain(model, "", "cd")
    finally:
        model.tokenizer = None


def test_occlusion_equals_captum_and_prefix_reuse_equals_recompute():
    from captum.attr import Occlusion as CaptumOcclusion

    model, x, L = MODELS["tokens"]
    x, L = x[:1], L[:1]  # Captum slides over all positions: use a full-length sequence
    ours = explain(model, x, "occlusion", lengths=L)
    target = int(ours.target[0])
    emb = model.embed(x).detach()
    cap = CaptumOcclusion(lambda e: model.explainable_parts().logits_from_embedded(e, L))
    ref = cap.attribute(emb, sliding_window_shapes=(1, emb.shape[-1]), baselines=0.0,
                        target=target)
    # Captum gives every embedding dimension of a token the token's score
    assert (ours.scores - ref[..., 0]).abs().max() <= 1e-5
    w3 = explain(model, x, "occlusion", window=3).scores
    ref3 = cap.attribute(emb, sliding_window_shapes=(3, emb.shape[-1]), baselines=0.0,
                         target=target)
    assert (w3 - ref3[..., 0]).abs().max() <= 1e-5


def _captum_shapley(forward, x, L, target, samples, mask_of):
    """Captum's ShapleyValueSampling, one sequence at a time, seeded once with 0."""
    from captum.attr import ShapleyValueSampling

    torch.manual_seed(0)
    out = torch.zeros_like(x)
    for b in range(x.shape[0]):
        n = int(L[b])
        xb = x[b:b + 1, :n]
        mask = mask_of(xb).contiguous()

        def f(e, _n=n):
            return forward(e, torch.full((e.shape[0],), _n))

        with torch.no_grad():
            if int(mask.max()) == 0:  # one player: Captum's mask warns; the whole gain
                out[b, :n] = f(xb)[0, target[b]] - f(torch.zeros_like(xb))[0, target[b]]
                continue
            out[b:b + 1, :n] = ShapleyValueSampling(f).attribute(
                xb, baselines=torch.zeros_like(xb), target=int(target[b]), feature_mask=mask,
                n_samples=samples, perturbations_per_eval=64)
    return out


@pytest.mark.parametrize("kind", ["attention", "tokens", "features"])
def test_shapley_sampling_equals_captum_and_is_efficient(kind):
    model, x, L = MODELS[kind]
    ours = explain(model, x, "shapley_sampling", lengths=L, samples=6)
    parts = model.explainable_parts()
    if kind == "features":
        inp = x.float()

        def forward(e, lengths):
            return parts.logits_from_embedded(parts.embed(e), lengths)

        def mask_of(xb):  # one player per (step, feature)
            return torch.arange(xb.shape[1] * xb.shape[2]).view(1, *xb.shape[1:])
    else:
        inp = parts.embed(x).detach()
        forward = parts.logits_from_embedded

        def mask_of(xb):  # one player per position
            return torch.arange(xb.shape[1])[None, :, None].expand(xb.shape)
    ref = _captum_shapley(forward, inp, L, ours.target, 6, mask_of)
    ref = ref if kind == "features" else ref[..., 0]
    assert (ours.scores - ref).abs().max() <= 1e-5
    # efficiency: every order's contributions add up to f(x) − f(baseline)
    with torch.no_grad():
        gain = (forward(inp, L) - forward(torch.zeros_like(inp), L)).gather(
            1, ours.target[:, None])[:, 0]
    total = ours.scores.sum(dim=tuple(range(1, ours.scores.dim())))
    assert (total - gain).abs().max() <= 1e-5
    assert ours.delta.shape == (x.shape[0],) and float(ours.delta.max()) <= 1e-5


def test_integrated_gradients_completeness_and_captum_parity():
    from captum.attr import IntegratedGradients

    model, x, L = MODELS["attention"]
    a = explain(model, x, "integrated_gradients", lengths=L, baseline="pad", steps=64)
    assert float(a.delta.max()) <= 1e-3
    parts = model.explainable_parts()
    emb = model.embed(x).detach()
    pad = model.embedding.weight[0].detach().expand_as(emb)
    ig = IntegratedGradients(lambda e: parts.logits_from_embedded(e, L.repeat(e.shape[0] // 3)))
    ref = ig.attribute(emb, baselines=pad, target=a.target, n_steps=64, method="gausslegendre")
    assert (a.scores - ref.sum(-1) * (torch.arange(7)[None] < L[:, None])).abs().max() <= 1e-6


def _cell_reference(model, ids, target):
    """Murdoch & Szlam from their equations, one sequence, plain loops, float64."""
    lstm = model.lstms[-1]
    assert len(model.lstms) == 1 and lstm.num_layers == 1
    W, V = lstm.weight_ih_l0.double(), lstm.weight_hh_l0.double()
    b = lstm.bias_ih_l0.double() + lstm.bias_hh_l0.double()
    H = V.shape[1]
    h, c = torch.zeros(H, dtype=torch.float64), torch.zeros(H, dtype=torch.float64)
    cs, fs, igs = [], [], []
    for x in model.embedding(ids).double():
        z = W @ x + V @ h + b
        i, f, g, o = (torch.sigmoid(z[:H]), torch.sigmoid(z[H:2 * H]), torch.tanh(z[2 * H:3 * H]),
                      torch.sigmoid(z[3 * H:]))
        c = f * c + i * g
        h = o * torch.tanh(c)
        cs.append(c)
        fs.append(f)
        igs.append(i * g)
    Wk = model.head.weight[target].double()
    T = len(cs)
    mult = [float(Wk @ (o * (torch.tanh(cs[j]) - (torch.tanh(cs[j - 1]) if j else 0))))
            for j in range(T)]
    e = []
    for i_ in range(T):
        disc = torch.ones(H, dtype=torch.float64)
        for j in range(i_ + 1, T):
            disc = disc * fs[j]
        e.append(disc * igs[i_])
    add = []
    for j in range(T):
        upto = sum(e[: j + 1])
        before = sum(e[:j]) if j else torch.zeros(H, dtype=torch.float64)
        add.append(float(Wk @ (o * (torch.tanh(upto) - torch.tanh(before)))))
    return np.array(mult), np.array(add)


def test_cell_decompositions_match_reference():
    torch.manual_seed(3)
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=20, embedding_dim=4,
                                            hidden_sizes=[6])).eval()
    ids = torch.randint(1, 20, (9,))
    with torch.no_grad():
        mult, add = _cell_reference(model, ids, 1)
    a = explain(model, ids, "cell_decomposition", target=1, dtype="float64")
    b = explain(model, ids, "additive_cell_decomposition", target=1, dtype="float64")
    assert np.abs(a.scores[0].numpy() - mult).max() <= 1e-10
    assert np.abs(b.scores[0].numpy() - add).max() <= 1e-10


def test_wrapped_user_module_matches_its_own_forward():
    parts, x, L = MODELS["user"]
    with torch.no_grad():
        assert (parts.logits_from_embedded(parts.embed(x), L) - parts.model(x)).abs().max() \
            <= 1e-6
    d = lstmlens.decomposition.decompose(parts, x[0], [(0, 6)])
    with torch.no_grad():
        full = parts.model(x[:1])[0] - parts.model.fc.bias
    assert (d.relevant[0] - full).abs().max() <= 1e-5


@pytest.mark.parametrize("method", ["kernel_shap", "shapley_sampling"])
def test_sampling_methods_on_a_single_token_give_the_whole_gain(method):
    from lstmlens.parts import parts_of
    torch.manual_seed(0)
    model = LSTMClassifier(ClassifierConfig(num_classes=3, vocab_size=20, embedding_dim=4,
                                            hidden_sizes=[5])).eval()
    ids, L = torch.tensor([[7]]), torch.tensor([1])
    att = explain(model, ids, method, target=2)
    parts = parts_of(model)
    with torch.no_grad():
        e = parts.embed(ids)  # (1, 1, E); the baseline is the zero embedding
        gain = parts.logits_from_embedded(e, L)[0, 2] - parts.logits_from_embedded(
            torch.zeros_like(e), L)[0, 2]
    assert att.scores.shape == (1, 1)
    torch.testing.assert_close(att.scores[0, 0], gain, atol=1e-6, rtol=0)
