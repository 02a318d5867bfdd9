"""Sanity checks (Adebayo et al. 2018; REFERENCES §6): do explanations depend on the model?

Model-parameter randomisation re-initialises layers of a copy of the model (the layer's own
``reset_parameters``, seeded): *cascading* from the top layer down, one more layer each
step, and *independent*, one layer at a time. Data randomisation compares with a model
trained on permuted labels. Each comparison is the per-sentence Spearman ρ between the
trained model's scores and the randomised model's scores for the same class (signed, and of
|scores|). A method *passes* when its explanations change: the upper end of the interval of
ρ (signed and absolute) on the fully randomised model is below :data:`PASS_BELOW`, and so
is ρ against the permuted-label model when there is one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import ModelError
from .stability import rank_agreement

PASS_BELOW = 0.5


def layers_top_down(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's weight layers from the output down: head, attention, LSTMs (last first),
    embedding — as ``(name, module)``."""
    named = dict(model.named_children())
    out: list[tuple[str, nn.Module]] = []
    for name in ("head", "attention"):
        if named.get(name) is not None:
            out.append((name, named[name]))
    lstms = named.get("lstms")
    if lstms is not None:
        out += [(f"lstms.{i}", m) for i, m in reversed(list(enumerate(lstms)))]
    if named.get("embedding") is not None:
        out.append(("embedding", named["embedding"]))
    if not out:
        raise ModelError("the sanity checks know the layers of lstmlens classifiers (head, "
                         "attention, lstms, embedding); this model has none of them")
    return out


def randomised(model: nn.Module, layers: list[str], seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose ``layers`` (names of :func:`layers_top_down`) are
    re-initialised with their own ``reset_parameters`` (seeded); the model is untouched.

    Examples
    --------
    >>> r = randomised(model, ["head"])  # doctest: +SKIP
    >>> bool((r.head.weight != model.head.weight).any())  # doctest: +SKIP
    True
    """
    new = copy.deepcopy(model)
    named = dict(layers_top_down(new))
    unknown = [n for n in layers if n not in named]
    if unknown:
        raise ModelError(f"unknown layer(s) {unknown}; this model's layers are "
                         f"{list(named)}")
    order = list(named)
    with torch.random.fork_rng():
        for name in layers:
            # a seed of its own per (seed, layer), far from the small seeds models are
            # trained with: re-drawing with a model's own init seed would give its weights
            torch.manual_seed(int(np.random.SeedSequence(
                [seed, order.index(name), 0x5A11]).generate_state(1)[0]))
            for mod in named[name].modules():
                if hasattr(mod, "reset_parameters"):
                    mod.reset_parameters()
    return new.eval()


def _compare(base: list[np.ndarray], other: list[np.ndarray], ci: Callable) -> dict[str, Any]:
    return {"spearman": ci(rank_agreement(base, other)),
            "spearman_abs": ci(rank_agreement(base, other, absolute=True))}


def sanity_report(model: nn.Module, sample: Any, target: np.ndarray,
                  scores: dict[str, list[np.ndarray]], *, ci: Callable, seed: int = 0,
                  permuted: nn.Module | None = None, batch_size: int = 64,
                  options: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Cascading and independent randomisation (and permuted labels) for every method.

    Returns ``{"layers", "methods": {name: {"spearman", "cascading", "independent",
    "permuted_labels", "passed", "verdict"}}}``; ``spearman`` is ρ on the fully randomised
    model (the end of the cascade).
    """
    from .evaluation import explain_sample
    names = [n for n, _ in layers_top_down(model)]
    cascade = [(names[: k + 1], randomised(model, names[: k + 1], seed)) for k in range(len(names))]
    single = [([n], randomised(model, [n], seed)) for n in names]
    out: dict[str, Any] = {"layers": names, "pass_below": PASS_BELOW, "methods": {}}
    for m, base in scores.items():
        def expl(mod, k, m=m):  # k: a distinct seed for each model's random ranking
            return explain_sample(mod, sample, m, target, batch_size, seed + 100 + k,
                                  (options or {}).get(m))
        try:
            casc = [{"layers": ls, **_compare(base, expl(mod, k), ci)}
                    for k, (ls, mod) in enumerate(cascade)]
            ind = [{"layers": ls, **_compare(base, expl(mod, 50 + k), ci)}
                   for k, (ls, mod) in enumerate(single)]
            perm = None if permuted is None else _compare(base, expl(permuted, 99), ci)
        except ModelError as e:
            out["methods"][m] = {"skipped": str(e)}
            continue
        final = casc[-1]
        tests = {"randomised weights": final["spearman"],
                 "randomised weights, |scores|": final["spearman_abs"]}
        if perm is not None:
            tests.update({"permuted labels": perm["spearman"],
                          "permuted labels, |scores|": perm["spearman_abs"]})
        defined = {k: t for k, t in tests.items() if t["n"]}
        high = {k: t["ci_high"] for k, t in defined.items() if t["ci_high"] >= PASS_BELOW}
        passed = bool(defined) and not high
        verdict = ("passes: explanations change when the weights or labels are randomised"
                   if passed else "fails: " + ("no comparison was defined" if not defined else
                                               "; ".join(f"{k} ρ up to {v:.2f}"
                                                         for k, v in high.items()))
                   + f" (must stay below {PASS_BELOW})")
        out["methods"][m] = {"spearman": final["spearman"], "cascading": casc,
                             "independent": ind, "permuted_labels": perm, "passed": passed,
                             "verdict": verdict}
    return out
