"""``explain``: one call for every explanation method and every model lstmlens can open."""

from __future__ import annotations

from typing import Any

import torch

from .attribution import Attribution
from .batching import pad_batch
from .errors import InputError
from .inputs import as_dtype, check_finite, check_lengths
from .methods import Context, check_supported, get_method
from .parts import ModelParts, parts_of


def _tokenizer(model: Any):
    tok = getattr(model, "tokenizer", None)
    if tok is None and isinstance(model, ModelParts):
        tok = getattr(model.model, "tokenizer", None)
    return tok


def prepare(model: Any, inputs: Any, lengths: Any = None):
    """Raw model inputs (B, T[, F]), lengths (B,) and tokens (or None) from what users pass:
    text (str or list of str, for models with a tokenizer), token ids [T] / [B, T], or
    features [T, F] / [B, T, F]."""
    parts = parts_of(model)
    tokens = None
    if isinstance(inputs, str) or (isinstance(inputs, (list, tuple)) and inputs
                                   and all(isinstance(t, str) for t in inputs)):
        tok = _tokenizer(model)
        if tok is None or not hasattr(tok, "encode"):
            raise InputError("this model has no tokenizer, so it cannot read text; pass token "
                             "ids [B, T] or features [B, T, F]")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        max_len = (getattr(model, "meta", None) or {}).get("max_length")
        ids = [tok.encode(t, max_length=max_len) for t in texts]
        for t, i in zip(texts, ids, strict=True):
            if all(v == tok.unk_id for v in i):
                raise InputError(f"every word of {t!r} is unknown to this model's vocabulary")
        tokens = [tok.tokens(i) for i in ids]
        x, L = pad_batch(ids)
        return parts, x, L, tokens
    x = torch.as_tensor(inputs)
    want = 2 if parts.input_kind == "tokens" else 3
    if x.dim() == want - 1:
        x = x[None]
    if x.dim() != want:
        what = "token ids [T] or [B, T]" if want == 2 else "features [T, F] or [B, T, F]"
        raise InputError(f"this model takes {what} (or text if it has a tokenizer); got shape "
                         f"{tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"inputs are empty (shape {tuple(x.shape)})")
    if parts.input_kind == "tokens":
        if x.is_floating_point():
            raise InputError("this model takes integer token ids, got floats")
        n = parts.embedding.num_embeddings
        if int(x.min()) < 0 or int(x.max()) >= n:
            raise InputError(f"token ids must lie in 0..{n - 1}")
        x = x.long()
        tok = _tokenizer(model)
        if tok is not None and hasattr(tok, "tokens"):
            tokens = [tok.tokens(row.tolist()) for row in x]
    else:
        x = x.float()
        check_finite(x)
    L = (check_lengths(lengths, x.shape[0], x.shape[1]) if lengths is not None
         else torch.full((x.shape[0],), x.shape[1], dtype=torch.long))
    return parts, x, L, tokens


def explain(model: Any, inputs: Any, method: str = "cd", target: Any = None,
            lengths: Any = None, *, dtype: Any = torch.float32, **options: Any) -> Attribution:
    """Explain ``model``'s prediction on ``inputs`` with one registered method.

    Parameters
    ----------
    model
        An lstmlens model (``lstmlens.load``), or ``lstmlens.wrap(module, ...)``.
    inputs
        Text (models with a tokenizer), token ids ``[T]``/``[B, T]`` or features
        ``[T, F]``/``[B, T, F]``.
    method
        ``cd``, ``lrp``, ``integrated_gradients``, ``saliency``, ``grad_x_input``,
        ``occlusion``, ``shapley_sampling``, ``kernel_shap``, ``attention``,
        ``cell_decomposition``, ``additive_cell_decomposition`` (see ``method_names()``).
    target
        The class to explain (an int or one per sequence); default the predicted class.

    Examples
    --------
    >>> att = explain(model, "a gripping, beautifully acted film", method="lrp")  # doctest: +SKIP
    >>> att.scores.shape  # [1, T]  # doctest: +SKIP
    """
    m = get_method(method)
    dtype = as_dtype(dtype)
    parts, x, L, tokens = prepare(model, inputs, lengths)
    parts.model.eval()
    with torch.no_grad():
        logits = parts.logits_from_embedded(parts.embed(x), L).float()  # (B, C)
    C = logits.shape[-1]
    if target is None:
        tgt = logits.argmax(-1)
    else:
        tgt = torch.as_tensor(target, dtype=torch.long).reshape(-1)
        if tgt.numel() == 1:
            tgt = tgt.expand(x.shape[0]).clone()
        if tgt.numel() != x.shape[0]:
            raise InputError(f"target must be one class or one per sequence ({x.shape[0]})")
        if int(tgt.min()) < 0 or int(tgt.max()) >= C:
            raise InputError(f"target must lie in 0..{C - 1} (the model has {C} classes), got "
                             f"{tgt.tolist()}")
    ctx = Context(parts, x, L, tgt, logits, dtype)
    check_supported(m, ctx)
    scores, delta, params = m.explain(ctx, **options)
    classes = (getattr(parts.model, "meta", None) or {}).get("classes")
    return Attribution(scores=scores.detach().to(dtype), method=method, target=tgt,
                       prediction=torch.softmax(logits, -1), lengths=L, tokens=tokens,
                       params=params, delta=None if delta is None else delta.detach(),
                       classes=classes)
