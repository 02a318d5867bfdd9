import numpy as np
import pytest
import torch
from neurons_helpers import TEXTS, word_classifier

import lstmlens
from lstmlens.errors import InputError, ModelError
from lstmlens.horizon import forget_products, gradient_norms, memory_horizon, plot_horizons
from lstmlens.states import collect_states


def test_forget_products_equal_a_hand_loop():
    rng = np.random.default_rng(0)
    seqs = [rng.uniform(0.05, 1.0, size=(n, 3)) for n in (9, 4, 6)]
    K = 5
    ours = forget_products(seqs, K)
    for k in range(K + 1):
        for u in range(3):
            vals = []
            for f in seqs:
                for t in range(k, len(f)):
                    p = 1.0
                    for j in range(t - k + 1, t + 1):
                        p *= f[j, u]
                    vals.append(p)
            assert ours[k, u] == pytest.approx(np.mean(vals), rel=1e-10)
    assert (ours[0] == 1).all()
    with pytest.raises(InputError, match="longer than max_distance"):
        forget_products(seqs, 20)


def test_gradient_norms_equal_one_backward_per_unit_and_sequence(tmp_path):
    model = lstmlens.load(word_classifier(tmp_path / "c", hidden=5))
    windows = [np.array(model.tokenizer.encode(t))[:4] for t in TEXTS if len(t.split()) >= 4]
    ours = gradient_norms(model, windows, units_per_pass=2)  # (4, 5), row k = T-1-t
    lstm = model.lstms[0]
    ref = np.zeros((4, 5))
    for u in range(5):
        for w in windows:
            x = model.embed(torch.as_tensor(w)[None]).detach().requires_grad_(True)
            _, (_, c) = lstm(x)
            (g,) = torch.autograd.grad(c[0, 0, u], x)  # (1, T, E)
            ref[:, u] += g[0].norm(dim=-1).flip(0).numpy() / len(windows)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)


def test_memory_horizon_reads_the_traced_forget_gate(tmp_path):
    model = lstmlens.load(word_classifier(tmp_path / "c", hidden=4, bidirectional=True))
    hz = memory_horizon(model, TEXTS, max_distance=3, name="tiny")
    st = collect_states(model, TEXTS, series=["forget_gate"])
    np.testing.assert_allclose(hz.forget_product,
                               forget_products(st.series[hz.key], 3), rtol=1e-12)
    assert hz.key.endswith("layers.0.forward.forget_gate")
    assert hz.gradient_norm.shape == (4, 4)
    assert np.allclose(hz.relative_gradient()[0], 1.0)
    assert hz.half_life().shape == (4,)
    fig = plot_horizons([hz, memory_horizon(model, TEXTS, max_distance=3, gradient=False)],
                        tmp_path / "h.png")
    assert "distance" in fig.axes[0].get_xlabel() and "forget" in fig.axes[0].get_ylabel()
    assert (tmp_path / "h.png").stat().st_size > 1000
    with pytest.raises(InputError, match="max_distance"):
        memory_horizon(model, TEXTS, max_distance=40)
    with pytest.raises(ModelError):
        gradient_norms(torch.nn.GRU(2, 2), [np.zeros((3, 2))])
