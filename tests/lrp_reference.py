"""LRP for LSTMs written plainly from REFERENCES §3.3: one sentence, one step at a time,
numpy float64, with the full ε-rule numerator matrix. The oracle for lstmlens's LRP."""

import numpy as np


def lrp_linear(hin, w, b, hout, Rout, N, eps, s):
    """hin (D,), w (D, M), b (M,), hout (M,) = hin @ w + b, Rout (M,) → Rin (D,)."""
    sign = np.where(hout >= 0, 1.0, -1.0)
    numer = hin[:, None] * w + s * (b[None, :] + eps * sign[None, :]) / N
    denom = hout + eps * sign
    return (numer / denom[None, :] * Rout[None, :]).sum(1)


def sig(x):
    return 1 / (1 + np.exp(-x))


def lstm_forward(W, V, b, xs):
    H = V.shape[1]
    h, c = np.zeros(H), np.zeros(H)
    rec = []
    for x in xs:
        z = W @ x + V @ h + b
        i, f, g, o = sig(z[:H]), sig(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), sig(z[3 * H:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        rec.append(dict(x=x, h_prev=h, c_prev=c, i=i, f=f, g=g, o=o, c=c_new, h=h_new,
                        zg=z[2 * H:3 * H]))
        h, c = h_new, c_new
    return rec


def lrp_lstm_layer(W, V, b, rec, R_h_above, eps, s):
    H = V.shape[1]
    E = W.shape[1]
    T = len(rec)
    Rx = [None] * T
    Rh = np.zeros(H)
    Rc = np.zeros(H)
    Wg, Vg, bg = W[2 * H:3 * H], V[2 * H:3 * H], b[2 * H:3 * H]
    I = np.identity(H)
    for t in range(T - 1, -1, -1):
        r = rec[t]
        Rh = Rh + R_h_above[t]
        Rc = Rc + Rh
        Rg = lrp_linear(r["i"] * r["g"], I, np.zeros(H), r["c"], Rc, 2 * H, eps, s)
        Rc = lrp_linear(r["f"] * r["c_prev"], I, np.zeros(H), r["c"], Rc, 2 * H, eps, s)
        Rx[t] = lrp_linear(r["x"], Wg.T, bg, r["zg"], Rg, H + E, eps, s)
        Rh = lrp_linear(r["h_prev"], Vg.T, bg, r["zg"], Rg, H + E, eps, s)
    return Rx, Rh.sum() + Rc.sum()


def lrp_reference(lstm, emb, W_out, b_out, target, eps=1e-3, s=0.0):
    """Unidirectional, multi-layer nn.LSTM, last-step read-out; emb (T, E)."""
    layers = []
    xs = list(emb)
    for k in range(lstm.num_layers):
        g = lambda n, k=k: getattr(lstm, f"{n}_l{k}").detach().double().numpy()  # noqa: E731
        W, V, b = g("weight_ih"), g("weight_hh"), g("bias_ih") + g("bias_hh")
        rec = lstm_forward(W, V, b, xs)
        layers.append((W, V, b, rec))
        xs = [r["h"] for r in rec]
    hT = xs[-1]
    logits = W_out @ hT + b_out
    R_out = np.zeros_like(logits)
    R_out[target] = logits[target]
    R_hT = lrp_linear(hT, W_out.T, b_out, logits, R_out, len(hT), eps, s)
    T = emb.shape[0]
    R_above = [np.zeros_like(hT) for _ in range(T)]
    R_above[-1] = R_hT
    initial = 0.0
    for W, V, b, rec in reversed(layers):
        R_above, init = lrp_lstm_layer(W, V, b, rec, R_above, eps, s)
        initial += init
    return np.array([r.sum() for r in R_above]), initial, logits[target]
