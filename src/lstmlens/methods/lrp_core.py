"""Layer-wise relevance propagation through the LSTM's gates (Arras et al. 2017), batched.

REFERENCES §3.3: the ε-rule on every weighted sum, with ``z`` the full forward
pre-activation and ``N`` its number of inputs; the gates pass nothing
("signal-take-all"): relevance flows from h_t to c_t, then into f_t ⊙ c_{t−1} and
i_t ⊙ g_t, and from g_t's pre-activation into x_t and h_{t−1}.

LRP runs its own forward pass (:func:`lrp_forward`): it needs c_t, f_t, i_t ⊙ g_t and z_g
at every step, which PyTorch's fused kernel does not return, and ``explain`` reads the
model's logits from it, so an explanation costs one forward pass and one backward sweep.
Inside, every series is time-major and feature-major, ``(T, units, B)``: one step of one
gate is a contiguous ``(units, B)`` block, one matrix product per step serves the whole
batch, and elementwise work runs in place on contiguous memory.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ..weights import layer_weights
from ..workspace import Workspace


def _sgn(z: torch.Tensor) -> torch.Tensor:
    """sgn(z) = ±1 with sgn(0) = +1 (also for −0.0), as a new tensor."""
    return torch.sign(z).add_(0.5).sign_()  # sign(±0) + ½ > 0


def _stab(z: torch.Tensor, eps: float, sgn: torch.Tensor | None = None) -> torch.Tensor:
    """z + ε·sgn(z), as a new tensor (``sgn`` when already known)."""
    s = _sgn(z) if sgn is None else sgn.clone()
    return torch.add(z, s, alpha=eps, out=s)


def _stab_(z: torch.Tensor, eps: float, scratch: torch.Tensor) -> torch.Tensor:
    """z + ε·sgn(z) in place of ``z``, with ``scratch`` (same shape) for the signs."""
    torch.sign(z, out=scratch).add_(0.5).sign_()
    return z.add_(scratch, alpha=eps)


def eps_linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None, z: torch.Tensor,
               R: torch.Tensor, N: int, eps: float, bias_factor: float) -> torch.Tensor:
    """ε-rule for z = x Wᵀ + b: relevance of the inputs ``x`` (B, in) from ``R`` (B, out).

    R_i = Σ_j [x_i w_ji + s (b_j + ε sgn z_j) / N] / (z_j + ε sgn z_j) · R_j
    """
    sgn = _sgn(z)
    q = R / _stab(z, eps, sgn)  # (B, out)
    out = x * (q @ W)  # (B, in)
    if bias_factor:
        spread = (eps * sgn + (b if b is not None else 0.0)) * q  # (b_j + ε sgn z_j) q_j
        out = out + bias_factor * spread.sum(-1, keepdim=True) / N
    return out


@dataclass
class LayerPass:
    """One layer and direction of an LSTM run forward, in processing order, ``(T, ·, B)``."""

    x: torch.Tensor  # (T, in, B) inputs
    gates: torch.Tensor  # (T, 4H, B) σ(i), σ(f), σ(o), and z_g (the candidate's pre-activation)
    ig: torch.Tensor  # (T, H, B) i ⊙ g
    c: torch.Tensor  # (T, H, B)
    h: torch.Tensor  # (T, P, B)
    m: torch.Tensor | None  # (T, H, B) o ⊙ tanh c when projected (h = W_hr m), else None
    xg: torch.Tensor | None  # (T, H, B) W_g,x x_t, the inputs' share of z_g, if kept
    w_x: torch.Tensor  # (H, in) W_g,x
    w_h: torch.Tensor  # (H, P) W_g,h
    b: torch.Tensor  # (H,) b_g
    w_hr: torch.Tensor | None  # (P, H)
    work: Workspace | None = None  # the workspace holding the series, if one does


def _steps(work: Workspace | None, tag: str, base: torch.Tensor, make):
    """``make(base)`` (per-step views of ``base``), memoised by ``work`` when given."""
    return make(base) if work is None else work.memo(tag, base, make)


def _buffers(work: Workspace | None, prefix: str, like: torch.Tensor):
    """``new(role, *shape)``: an uninitialised tensor like ``like``'s dtype and device, from
    ``work`` (named ``prefix + role``) when given, else fresh."""
    if work is None:
        return lambda role, *shape: like.new_empty(shape)
    return lambda role, *shape: work.get(prefix + role, *shape, dtype=like.dtype,
                                         device=like.device)


def run_layer(x: torch.Tensor, w, keep_xg: bool = False, work: Workspace | None = None,
              name: str = "") -> LayerPass:
    """Run one layer and direction with weights ``w`` on ``x`` (T, in, B) from zero states.

    One input projection for all steps, then per step one ``W_hh h`` product and six
    elementwise operations written straight into the series' buffers. ``keep_xg``: keep
    W_g,x x_t (for relevance summed over each input vector). ``work``: take the buffers from
    this workspace, under names starting with ``name`` (then the pass is valid until the
    same names are asked for again).
    """
    T, _, B = x.shape
    H, P = w.hidden_size, w.output_size
    H2, H3 = 2 * H, 3 * H
    new = _buffers(work, name, x)
    w_ih, w_hh, bias = w.sigmoids_first()  # gates i, f, o, g
    G = torch.matmul(w_ih, x, out=new("gates", T, 4 * H, B))  # (T, 4H, B)
    xg = new("xg", T, H, B).copy_(G[:, H3:]) if keep_xg else None  # (T, H, B)
    G.add_(bias[:, None])
    IG, C = new("ig", T, H, B), new("c", T, H, B)
    Hs = new("h", T, P, B)
    M = new("m", T, H, B) if w.w_hr is not None else None
    tanh_c = new("tanh_c", H, B)
    # per-step views: (4H, B) blocks and their gate slices (kept by the workspace)
    g_all, sig, z_g, i_g, f_g, o_g = _steps(work, "gates", G, lambda G: (
        G.unbind(0), G[:, :H3].unbind(0), G[:, H3:].unbind(0), G[:, :H].unbind(0),
        G[:, H:H2].unbind(0), G[:, H2:H3].unbind(0)))
    ig, c, h = (_steps(work, "steps", s, torch.Tensor.unbind) for s in (IG, C, Hs))
    tanh, mul, addcmul = torch.tanh, torch.mul, torch.addcmul
    for t in range(T):
        if t:
            g_all[t].addmm_(w_hh, h[t - 1])
            sig[t].sigmoid_()
            tanh(z_g[t], out=ig[t]).mul_(i_g[t])  # i ⊙ g; z_g stays in G
            addcmul(ig[t], f_g[t], c[t - 1], out=c[t])  # + f ⊙ c_{t−1}
        else:  # from zero states
            sig[0].sigmoid_()
            tanh(z_g[0], out=c[0]).mul_(i_g[0])
            ig[0].copy_(c[0])
        tanh(c[t], out=tanh_c)
        if M is None:
            mul(o_g[t], tanh_c, out=h[t])  # o ⊙ tanh c
        else:
            torch.mm(w.w_hr, mul(o_g[t], tanh_c, out=M[t]), out=h[t])
    return LayerPass(x, G, IG, C, Hs, M, xg, w.w_ih[H2:H3], w.w_hh[H2:H3], w.bias[H2:H3],
                     w.w_hr, work)


def reverse_steps(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence of ``x`` (T, F, B) within its own length (padding stays put);
    its own inverse. ``lengths`` None: all sequences are full."""
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T)[:, None]  # (T, 1)
    idx = torch.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (T, B)
    return x.gather(0, idx[:, None, :].expand_as(x))


@dataclass
class LRPForward:
    """LRP's forward pass of a whole model: every layer's series and the read-out."""

    x: torch.Tensor  # the raw inputs it ran on
    layers: list[list[list[LayerPass]]]  # per LSTM module, layer, direction
    lengths: torch.Tensor | None  # (B,), None when no sequence is padded
    h: torch.Tensor  # (B, T, D·P) the top LSTM's outputs, zero at padding
    pooled: torch.Tensor  # (B, D·P)
    alpha: torch.Tensor | None  # (B, T) attention weights
    logits: torch.Tensor  # (B, C)


def lrp_forward(parts, x: torch.Tensor, lengths: torch.Tensor,
                dtype: torch.dtype = torch.float32, work: Workspace | None = None
                ) -> LRPForward:
    """Run the model described by ``parts`` on ``x`` with LRP's own LSTM loop, in ``dtype``.
    ``work``: keep the layers' series in this workspace's buffers (the pass is then valid
    until the next one that uses it)."""
    with torch.no_grad():
        emb = parts.embed(x).to(dtype)  # (B, T, E)
        B, T, _ = emb.shape
        L = None if bool((lengths == T).all()) else lengths
        pad = None if L is None else (torch.arange(T)[:, None] >= L[None, :])[:, None, :]
        h = emb.permute(1, 2, 0)  # (T, E, B)
        tokens = parts.input_kind == "tokens"  # word relevance: sums over embeddings
        layers = []
        for lstm in parts.lstms:
            D = 2 if lstm.bidirectional else 1
            per_layer = []
            for k in range(lstm.num_layers):
                runs, outs = [], []
                for d in range(D):
                    run = run_layer(h if d == 0 else reverse_steps(h, L),
                                    layer_weights(lstm, k, d, dtype),
                                    keep_xg=tokens and not layers and k == 0, work=work,
                                    name=f"{len(layers)}.{k}.{d}.")
                    runs.append(run)
                    outs.append(run.h if d == 0 else reverse_steps(run.h, L))
                per_layer.append(runs)
                h = outs[0] if D == 1 else torch.cat(outs, 1)  # (T, D·P, B)
                if pad is not None:
                    h = h.masked_fill(pad, 0.0)
            layers.append(per_layer)
        top = h.permute(2, 0, 1)  # (B, T, D·P)
        alpha = None
        if parts.pooling in ("last", "final"):
            pooled, _ = parts.pool(top, lengths, parts.lstms[-1].bidirectional)
        else:
            att = parts.pooling
            if next(att.parameters()).dtype != dtype:
                att = copy.deepcopy(att).to(dtype)
            mask = torch.arange(T)[None, :] < lengths[:, None]
            pooled, alpha = att(top, mask)  # (B, D·P), (B, T)
        W = parts.head.weight.to(dtype)
        b = parts.head.bias.to(dtype) if parts.head.bias is not None else None
        logits = torch.addmm(b, pooled, W.t()) if b is not None else pooled @ W.t()  # (B, C)
    return LRPForward(x, layers, L, top, pooled, alpha, logits)


def _input_share(p: LayerPass) -> torch.Tensor:
    """W_g,x x_t (T, H, B): the inputs' share of z_g."""
    return p.xg if p.xg is not None else torch.matmul(p.w_x, p.x)


def _relevance_fast(p: LayerPass, arrivals: list, eps: float, inputs: bool) -> torch.Tensor:
    """``bias_factor = 0`` without projection: relevance of the inputs, (T, in, B) when
    ``inputs``, else summed over each step's input vector (T, B); ``arrivals[t]`` is the
    relevance (P, B) arriving on h_t from above, or None. Nothing reaches the zero initial
    states. Consumes ``p``: its buffers are reused in place (fresh memory costs page faults).

    One running relevance r_t = R_h[t] + R_c[t] (both enter c_t): per step
    q_t = K_g[t] r_t, r_{t−1} = K_c[t] r_t + h_{t−1} ⊙ (W_g,hᵀ q_t) (+ what arrives).
    """
    T, H, B = p.c.shape
    G = p.gates  # (T, 4H, B): σ(i) and σ(o) are spent, σ(f) and z_g still needed
    K_c = G[:, H:2 * H]  # becomes f c_{t−1} / (c_t + ε sgn c_t), in place of σ(f)
    K_c[0].zero_()  # c_{−1} = 0
    K_c[1:].mul_(p.c[:-1])
    S_c = _stab_(p.c, eps, G[:, :H])  # in place of c; σ(i)'s block as scratch
    K_c.div_(S_c)
    S_g = _stab_(G[:, 3 * H:], eps, G[:, 2 * H:3 * H])  # in place of z_g
    Q = p.ig.div_(S_c).div_(S_g)  # i g / (c + ε sgn c) / (z_g + ε sgn z_g), (T, H, B)
    w_ht = p.w_h.t()  # (P, H)
    r = p.c.new_zeros(H, B)
    back = p.c.new_empty(H, B)
    q, k, h = (_steps(p.work, "steps", s, torch.Tensor.unbind) for s in (Q, K_c, p.h))
    mm = torch.mm
    for t in range(T - 1, 0, -1):
        if arrivals[t] is not None:
            r += arrivals[t]
        q[t].mul_(r)  # (H, B) relevance of z_g over z_g
        r.mul_(k[t]).addcmul_(h[t - 1], mm(w_ht, q[t], out=back))
    if arrivals[0] is not None:
        r += arrivals[0]
    q[0].mul_(r)
    if inputs:
        return torch.matmul(p.w_x.t(), Q).mul_(p.x)  # (T, in, B)
    return Q.mul_(_input_share(p)).sum(1)  # Σ_e x_e Σ_j W_je q_j = Σ_j q_j (W x)_j, (T, B)


def _relevance(p: LayerPass, arrivals: list, eps: float, bias_factor: float, inputs: bool):
    """Any ``bias_factor``, with or without projection: relevance of the inputs ((T, in, B),
    or (T, B) summed when not ``inputs``) and of the initial states (B,)."""
    T, H, B = p.c.shape
    P, n_in = p.h.shape[1], p.x.shape[1]
    s = bias_factor
    N_c, N_g = 2 * H, n_in + P
    zg = p.gates[:, 3 * H:]
    sgn_c, sgn_g = _sgn(p.c), _sgn(zg)  # (T, H, B)
    S_c, S_g = _stab(p.c, eps, sgn_c), _stab(zg, eps, sgn_g)
    sgn_c.mul_(eps / N_c)  # ε sgn c_t / N
    bias_g = sgn_g.mul_(eps).add_(p.b[:, None]).div_(N_g)  # (b_g + ε sgn z_g) / N
    fc = torch.zeros_like(p.c)
    fc[1:] = p.gates[1:, H:2 * H] * p.c[:-1]  # f ⊙ c_{t−1}, c_{−1} = 0
    Q = torch.empty_like(p.c)  # relevance of z_g over z_g
    share = p.c.new_zeros(T, 1, B)  # what each input of z_g gets from the ε-rule's spread
    Rh, Rc = p.c.new_zeros(P, B), p.c.new_zeros(H, B)
    w_ht = p.w_h.t()  # (P, H)
    for t in range(T - 1, -1, -1):
        if arrivals[t] is not None:
            Rh = Rh + arrivals[t]
        if p.m is not None:  # h_t = W_hr m_t: the ε-rule into m_t, N = H
            sgn_h = _sgn(p.h[t])  # (P, B)
            qh = Rh / _stab(p.h[t], eps, sgn_h)
            Rh = p.m[t] * (p.w_hr.t() @ qh)  # (H, B)
            if s:
                Rh = Rh + s * eps * (sgn_h * qh).sum(0) / H
        Rc = Rc + Rh  # the output gate gets nothing; tanh passes relevance through
        q = Rc / S_c[t]  # (H, B)
        spread = s * (sgn_c[t] * q).sum(0) if s else 0.0  # (B,)
        torch.div(p.ig[t] * q + spread, S_g[t], out=Q[t])
        Rc = fc[t] * q + spread
        if s:
            share[t, 0] = s * (bias_g[t] * Q[t]).sum(0)
        Rh = (w_ht @ Q[t]) * p.h[t - 1] if t else p.c.new_zeros(P, B)  # h_{−1} = 0
        if s:
            Rh = Rh + share[t]
    if inputs:
        Rx = torch.matmul(p.w_x.t(), Q).mul_(p.x) + share  # (T, in, B)
    else:
        Rx = (Q * _input_share(p)).sum(1) + n_in * share[:, 0]  # (T, B)
    return Rx, Rh.sum(0) + Rc.sum(0)


def _point_arrivals(steps: torch.Tensor, values: torch.Tensor, T: int) -> list:
    """Per-step arrivals (P, B) or None from one relevance vector per sequence: ``values``
    (B, P) arriving at processing step ``steps`` (B,)."""
    arrivals: list = [None] * T
    vt = values.t()  # (P, B)
    first, last = steps.aminmax()
    if first == last:  # one step for all (full-length sequences)
        arrivals[int(first)] = vt
        return arrivals
    for t in steps.unique().tolist():
        arrivals[t] = vt * (steps == t)
    return arrivals


def lrp_lstm(runs: list[list[LayerPass]], lengths: torch.Tensor | None,
             R_out: torch.Tensor | tuple[torch.Tensor, torch.Tensor], eps: float,
             bias_factor: float, inputs: bool = True):
    """Relevance of one ``nn.LSTM``'s inputs from the relevance of its top outputs: dense,
    ``R_out`` (T, D·P, B), or one vector per sequence, ``R_out = (positions (D, B),
    values (B, D·P))`` arriving at input position ``positions[d]`` in direction d.

    Returns (T, in, B), or (T, B) summed over each input vector when not ``inputs``, and
    the total relevance that reached initial states (B,).
    """
    T = runs[0][0].c.shape[0]
    B = runs[0][0].c.shape[-1]
    full = torch.full((B,), T) if lengths is None else lengths
    R = R_out
    initial = runs[0][0].c.new_zeros(B)
    for k in range(len(runs) - 1, -1, -1):
        R_in = None
        for d, p in enumerate(runs[k]):
            P = p.h.shape[1]
            if isinstance(R, tuple):  # processing step of each sequence's position
                steps = R[0][d] if d == 0 else full - 1 - R[0][d]
                arrivals = _point_arrivals(steps, R[1][:, d * P:(d + 1) * P], T)
            else:
                R_d = R[:, d * P:(d + 1) * P]
                arrivals = list((R_d if d == 0 else reverse_steps(R_d, lengths)).unbind(0))
            want = inputs or k > 0
            if bias_factor == 0 and p.m is None:
                Rx = _relevance_fast(p, arrivals, eps, want)
            else:
                Rx, init = _relevance(p, arrivals, eps, bias_factor, want)
                initial += init
            if d:
                Rx = reverse_steps(Rx if Rx.dim() == 3 else Rx[:, None], lengths).reshape(
                    Rx.shape)
            R_in = Rx if R_in is None else R_in + Rx
        R = R_in
    return R, initial


def lrp_parts(parts, x: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor,
              eps: float = 1e-3, bias_factor: float = 0.0, dtype: torch.dtype = torch.float32,
              forward: LRPForward | None = None, per_dimension: bool = True):
    """LRP of the ``target`` logit (B,) of a model described by ``parts``.

    Returns the relevance of each step's input vector (B, T, E) (``per_dimension=False``:
    summed over the vector, (B, T, 1)), the relevance that reached the initial states (B,),
    and the target logits (B,). With ``bias_factor=1`` the two relevances add up to the
    target logit (conservation). ``forward`` is :func:`lrp_forward`'s pass on ``x`` when
    already run; it is consumed (its buffers are reused), so pass each one once.
    """
    if forward is None:
        forward = lrp_forward(parts, x, lengths, dtype)
    with torch.no_grad():
        h, pooled, logits = forward.h, forward.pooled, forward.logits
        B, T, _ = h.shape
        W = parts.head.weight.to(dtype)
        b = parts.head.bias.to(dtype) if parts.head.bias is not None else None
        rows = torch.arange(B)
        R_logits = torch.zeros_like(logits)
        R_logits[rows, target] = logits[rows, target]
        R_pooled = eps_linear(pooled, W, b, logits, R_logits, pooled.shape[-1], eps, bias_factor)
        bidir = parts.lstms[-1].bidirectional
        if parts.pooling in ("last", "final"):  # one output per sequence and direction
            last = lengths - 1
            back = last if parts.pooling == "last" else torch.zeros_like(last)
            R = (torch.stack([last, back]) if bidir else last[None], R_pooled)
        else:  # pooled_u = Σ_t α_t h_{t,u}: ε-rule over the T terms of each unit
            mask = torch.arange(T)[None, :] < lengths[:, None]
            sgn = _sgn(pooled)
            q = R_pooled / _stab(pooled, eps, sgn)  # (B, D·P)
            R_h = forward.alpha[..., None] * h * q[:, None, :]  # (B, T, D·P)
            if bias_factor:
                share = bias_factor * eps * sgn * q / lengths[:, None].to(dtype)  # (B, D·P)
                R_h = R_h + share[:, None, :] * mask[..., None]
            R = R_h.permute(1, 2, 0)  # (T, D·P, B)
        initial = h.new_zeros(B)
        for m in range(len(parts.lstms) - 1, -1, -1):
            R, init = lrp_lstm(forward.layers[m], forward.lengths, R, eps, bias_factor,
                               inputs=per_dimension or m > 0)
            initial = initial + init
        R = R.permute(2, 0, 1) if R.dim() == 3 else R.t()[..., None]  # (B, T, E or 1)
        return R, initial, logits[rows, target]
