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


def _labels(model: Any, parts: Any) -> list[str] | None:
    """Names of the head's outputs: the model's class names, else those its parts give."""
    owner = parts.model if isinstance(parts, ModelParts) else model
    classes = (getattr(owner, "meta", None) or {}).get("classes")
    return list(classes) if classes else getattr(parts, "labels", None)


def _resolve_target(target: Any, B: int, C: int, labels: list[str] | None, tok: Any,
                    outputs: str) -> torch.Tensor:
    """Target ids ``(B,)`` from an index, one per sequence, or names: a class name, or a
    token (a character for a language model) mapped through the tokenizer."""
    names = [target] if isinstance(target, str) else target
    if isinstance(names, (list, tuple)) and names and all(isinstance(t, str) for t in names):
        ids = []
        for name in names:
            if labels and name in labels:
                ids.append(labels.index(name))
                continue
            vocab = hasattr(tok, "split") and len(tok) == C  # the outputs are its tokens
            pieces = tok.split(name) if vocab else []
            if len(pieces) == 1 and pieces[0] in tok.vocab:
                ids.append(tok.id(pieces[0]))
                continue
            shown = ", ".join(repr(v) for v in (labels or [])[:20])
            raise InputError(f"target {name!r} is not one of this model's outputs; give an "
                             f"index 0..{C - 1}" + (f" or one of {shown}" if shown else ""))
        target = ids
    tgt = torch.as_tensor(target).reshape(-1)
    if tgt.is_floating_point() or tgt.dtype == torch.bool:
        raise InputError(f"target must be whole numbers (output indices), got {target!r}")
    tgt = tgt.long()
    if tgt.numel() == 1:
        tgt = tgt.expand(B).clone()
    if tgt.numel() != B:
        raise InputError(f"target must be one output or one per sequence ({B})")
    if int(tgt.min()) < 0 or int(tgt.max()) >= C:
        what = (f"the model forecasts {C} steps" if outputs == "values"
                else f"the model has {C} classes")
        raise InputError(f"target must lie in 0..{C - 1} ({what}), got {tgt.tolist()}")
    return tgt


def _is_translation(model: Any) -> bool:
    from .models.seq2seq import Seq2Seq
    return isinstance(model, Seq2Seq)


def explain(model: Any, inputs: Any, method: str = "cd", target: Any = None,
            lengths: Any = None, *, dtype: Any = torch.float32, translation: Any = None,
            **options: Any) -> Attribution:
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
        What to explain, by model kind:

        - classifiers: the class (an index, one per sequence, or a class name); default the
          predicted class;
        - language models: the next token after the prefix (an id or a one-character
          string); default the predicted next token;
        - forecasters: the output step ``0..horizon−1``; default 0 (the next value). Scores
          explain the forecast's change from the window's last value in the series' units,
          as a function of the window relative to that value (see
          ``LSTMForecaster.explainable_parts``); ``prediction`` holds the forecast values;
        - translation models: the output position ``k`` of the model's own greedy
          translation (or of ``translation=``, teacher-forced); default 0. Scores are over
          the source tokens; ``params`` records the output token and the translation.
    translation
        Translation models only: the output sentence to explain (text or target ids),
        instead of the model's greedy translation.

    Examples
    --------
    >>> att = explain(model, "a gripping, beautifully acted film", method="lrp")  # doctest: +SKIP
    >>> att.scores.shape  # [1, T]  # doctest: +SKIP
    >>> explain(lm, "And God sa", method="cd", target="i")  # doctest: +SKIP
    >>> explain(mt, "And God said", method="integrated_gradients", target=2)  # doctest: +SKIP
    """
    m = get_method(method)
    dtype = as_dtype(dtype)
    extra: dict[str, Any] = {}
    if _is_translation(model):
        from .seq2seq_parts import prepare_translation
        tt = prepare_translation(model, inputs, lengths, target, translation)
        parts, x, L, tokens, tgt, logits = tt.parts, tt.x, tt.lengths, tt.tokens, tt.target, \
            tt.logits
        prediction, extra = torch.softmax(logits, -1), tt.params
    else:
        if translation is not None:
            raise InputError("translation= applies to translation models only")
        parts, x, L, tokens = prepare(model, inputs, lengths)
        offset = None
        if parts.preprocess is not None:  # e.g. the forecaster's window relative to its level
            x, offset = parts.preprocess(x, L)
        if any(m.training for m in parts.model.modules()):
            parts.model.eval()
        own = getattr(m, "forward_logits", None)  # a method with its own forward pass (LRP)
        with torch.no_grad():
            logits = own(parts, x, L, dtype) if own is not None else None
            if logits is None:
                logits = parts.logits_from_embedded(parts.embed(x), L)
            logits = logits.float()  # (B, C)
        C = logits.shape[-1]
        if target is None:
            tgt = logits.argmax(-1) if parts.outputs == "classes" else torch.zeros(
                x.shape[0], dtype=torch.long)
        else:
            tgt = _resolve_target(target, x.shape[0], C, _labels(model, parts),
                                  _tokenizer(model), parts.outputs)
        if parts.outputs == "values":  # the model's own output: read-out plus offset
            prediction = logits if offset is None else logits + offset.float().reshape(
                x.shape[0], -1)
        else:
            prediction = torch.softmax(logits, -1)
    ctx = Context(parts, x, L, tgt, logits, dtype)
    check_supported(m, ctx)
    scores, delta, params = m.explain(ctx, **options)
    return Attribution(scores=scores.detach().to(dtype), method=method, target=tgt,
                       prediction=prediction, lengths=L, tokens=tokens,
                       params={**params, **extra},
                       delta=None if delta is None else delta.detach(),
                       classes=_labels(model, parts), outputs=parts.outputs)
