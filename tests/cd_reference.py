"""Contextual decomposition written plainly from REFERENCES §3.2: one sentence, one span,
one step at a time, float64. The oracle for lstmlens.decompose."""

import numpy as np


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def split(phi, a, b, B):
    R = 0.5 * (phi(a + B) - phi(B) + phi(a + b + B) - phi(b + B))
    I = 0.5 * (phi(b + B) - phi(B) + phi(a + b + B) - phi(a + B))
    return R, I, phi(B)


def weights(lstm, k, d):
    sfx = f"_l{k}" + ("_reverse" if d else "")
    g = lambda n: getattr(lstm, n + sfx).detach().double().numpy()  # noqa: E731
    W, V = g("weight_ih"), g("weight_hh")
    b = g("bias_ih") + g("bias_hh") if lstm.bias else np.zeros(W.shape[0])
    Wr = g("weight_hr") if lstm.proj_size else None
    return W, V, b, Wr


def cd_layer(W, V, b, Wr, rel_x, irr_x, span, bias_rule):
    """rel_x, irr_x: lists (T) of input vectors in processing order; span: set of steps."""
    H = V.shape[0] // 4
    P = V.shape[1]
    bh, gh, bc, gc = np.zeros(P), np.zeros(P), np.zeros(H), np.zeros(H)
    out_b, out_g = [], []
    for t in range(len(rel_x)):
        # the true forward pass gives the output gate
        x = rel_x[t] + irr_x[t]
        hfull = bh + gh
        z = W @ x + V @ hfull + b
        o = sig(z[3 * H:])
        a = W @ rel_x[t] + V @ bh
        bb = W @ irr_x[t] + V @ gh
        Ri, Ii, Zi = split(sig, a[:H], bb[:H], b[:H])
        Rf, If, Zf = split(sig, a[H:2 * H], bb[H:2 * H], b[H:2 * H])
        Rg, Ig, Zg = split(np.tanh, a[2 * H:3 * H], bb[2 * H:3 * H], b[2 * H:3 * H])
        nbc = Ri * (Rg + Zg) + Zi * Rg + (Rf + Zf) * bc
        ngc = Ii * (Rg + Ig + Zg) + (Ri + Zi) * Ig + (Rf + If + Zf) * gc + If * bc
        if bias_rule == "code" and t in span:
            nbc = nbc + Zi * Zg
        else:
            ngc = ngc + Zi * Zg
        bc, gc = nbc, ngc
        bh = o * 0.5 * (np.tanh(bc) + np.tanh(bc + gc) - np.tanh(gc))
        gh = o * 0.5 * (np.tanh(gc) + np.tanh(bc + gc) - np.tanh(bc))
        if Wr is not None:
            bh, gh = Wr @ bh, Wr @ gh
        out_b.append(bh)
        out_g.append(gh)
    return out_b, out_g


def cd_reference(lstms, emb, W_out, start, end, pooling="last", alpha=None, bias_rule="code"):
    """emb: (T, E) array of one sentence; returns (relevant, irrelevant) logits (no bias)."""
    T = emb.shape[0]
    span = set(range(start, end + 1))
    rel = [emb[t] if t in span else np.zeros_like(emb[t]) for t in range(T)]
    irr = [np.zeros_like(emb[t]) if t in span else emb[t] for t in range(T)]
    for lstm in lstms:
        for k in range(lstm.num_layers):
            dirs_b, dirs_g = [], []
            for d in range(2 if lstm.bidirectional else 1):
                W, V, b, Wr = weights(lstm, k, d)
                order = list(range(T)) if d == 0 else list(range(T - 1, -1, -1))
                pspan = {i for i, t in enumerate(order) if t in span}
                ob, og = cd_layer(W, V, b, Wr, [rel[t] for t in order], [irr[t] for t in order],
                                  pspan, bias_rule)
                back_b, back_g = [None] * T, [None] * T
                for i, t in enumerate(order):
                    back_b[t], back_g[t] = ob[i], og[i]
                dirs_b.append(back_b)
                dirs_g.append(back_g)
            rel = [np.concatenate([db[t] for db in dirs_b]) for t in range(T)]
            irr = [np.concatenate([dg[t] for dg in dirs_g]) for t in range(T)]
    if pooling == "last":  # output sequence at the last step
        pb, pg = rel[T - 1], irr[T - 1]
    elif pooling == "final":  # h_n: the backward half at step 0
        if len(dirs_b) == 2:
            P = len(dirs_b[0][0])
            pb = np.concatenate([rel[T - 1][:P], rel[0][P:]])
            pg = np.concatenate([irr[T - 1][:P], irr[0][P:]])
        else:
            pb, pg = rel[T - 1], irr[T - 1]
    else:
        pb = sum(alpha[t] * rel[t] for t in range(T))
        pg = sum(alpha[t] * irr[t] for t in range(T))
    return W_out @ pb, W_out @ pg
