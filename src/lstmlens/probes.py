"""Diagnostic classifiers (Hupkes et al. 2018) with control tasks (Hewitt & Liang 2019).

A probe is a small classifier from a state to a property of the token (inside a string?
bracket depth?). High accuracy alone may only show that the probe memorises word types, so
each probe is also trained on a *control task*: every token type gets a random label drawn
from the real labels' distribution, fixed per type. Selectivity is probe accuracy minus
control accuracy on held-out steps; a selective probe reads the property, not the types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from .errors import InputError


def control_labels(types: Sequence[Any], labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Hewitt & Liang's control task: one random label per token type, drawn from the
    empirical distribution of ``labels``.

    Examples
    --------
    >>> y = control_labels(["a", "b", "a"], np.array([0, 1, 1]))
    >>> y[0] == y[2]
    True
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    table: dict[Any, Any] = {}
    out = np.empty(len(types), dtype=labels.dtype)
    for i, t in enumerate(types):
        if t not in table:
            table[t] = rng.choice(classes, p=counts / counts.sum())
        out[i] = table[t]
    return out


@dataclass
class ProbeResult:
    accuracy: float
    control_accuracy: float
    majority_accuracy: float

    @property
    def selectivity(self) -> float:
        return self.accuracy - self.control_accuracy


class DiagnosticProbe:
    """A linear probe (multinomial logistic regression on standardised states).

    Parameters
    ----------
    C
        Inverse L2 regularisation strength.
    test_size
        Fraction of steps held out to score the probe and its control task.
    max_iter, seed
        Solver iterations; seed of the split and of the control labels.

    After :meth:`fit`: ``accuracy_``, ``control_accuracy_``, ``selectivity_``,
    ``majority_accuracy_``, ``classes_``, ``classifier_``, ``control_classifier_``.

    Examples
    --------
    >>> probe = DiagnosticProbe().fit(states.flat("cell"), labels, types=tokens)  # doctest: +SKIP
    >>> round(probe.selectivity_, 3)  # doctest: +SKIP
    """

    def __init__(self, C: float = 1.0, test_size: float = 0.25, max_iter: int = 500,
                 seed: int = 0):
        self.C, self.test_size, self.max_iter, self.seed = C, test_size, max_iter, seed

    def _classifier(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, max_iter=self.max_iter)

    def fit(self, X: Any, y: Any, types: Sequence[Any] | None = None) -> DiagnosticProbe:
        """Train on a random ``1 − test_size`` of the steps and score the rest.

        Parameters
        ----------
        X
            ``(N, units)`` states, one row per token.
        y
            ``(N,)`` the property (class labels; a continuous value is refused).
        types
            ``(N,)`` token types for the control task; without them the control task is
            skipped and ``control_accuracy_`` and ``selectivity_`` are NaN.
        """
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
            raise InputError(f"give states X [N, units] and labels y [N]; got X {X.shape} "
                             f"and y {y.shape}")
        if np.issubdtype(y.dtype, np.floating) and not np.all(y == np.round(y)):
            raise InputError("probe labels must be classes (whole numbers or strings); bin a "
                             "continuous property first")
        if len(np.unique(y)) < 2:
            raise InputError("the labels hold a single class; a probe needs at least two")
        if not 0 < self.test_size < 1:
            raise InputError(f"test_size must be in (0, 1), got {self.test_size}")
        if types is not None and len(types) != len(y):
            raise InputError(f"types has {len(types)} entries for {len(y)} labels")
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(y))
        n_test = max(1, int(round(self.test_size * len(y))))
        test, train = order[:n_test], order[n_test:]
        self.scaler_ = StandardScaler().fit(X[train])
        Z = self.scaler_.transform(X)
        self.classifier_ = self._classifier().fit(Z[train], y[train])
        self.classes_ = self.classifier_.classes_
        self.accuracy_ = float((self.classifier_.predict(Z[test]) == y[test]).mean())
        values, counts = np.unique(y[train], return_counts=True)
        self.majority_accuracy_ = float((y[test] == values[counts.argmax()]).mean())
        self.control_accuracy_ = float("nan")
        self.control_classifier_ = None
        if types is not None:
            yc = control_labels(list(types), y, seed=self.seed)
            if len(np.unique(yc[train])) > 1:
                self.control_classifier_ = self._classifier().fit(Z[train], yc[train])
                pred = self.control_classifier_.predict(Z[test])
            else:  # every type drew the same label: the control task is constant
                pred = np.full(len(test), yc[train][0])
            self.control_accuracy_ = float((pred == yc[test]).mean())
        self.selectivity_ = self.accuracy_ - self.control_accuracy_
        return self

    def predict(self, X: Any) -> np.ndarray:
        self._check_fitted()
        return self.classifier_.predict(self.scaler_.transform(np.asarray(X, np.float64)))

    def score(self, X: Any, y: Any) -> float:
        return float((self.predict(X) == np.asarray(y)).mean())

    def result(self) -> ProbeResult:
        self._check_fitted()
        return ProbeResult(self.accuracy_, self.control_accuracy_, self.majority_accuracy_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "classifier_"):
            raise InputError("this probe is not fitted yet; call fit(X, y) first")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"C": self.C, "test_size": self.test_size, "max_iter": self.max_iter,
                "seed": self.seed}

    def __repr__(self) -> str:
        fitted = (f", accuracy={self.accuracy_:.3f}, selectivity={self.selectivity_:.3f}"
                  if hasattr(self, "accuracy_") else "")
        return f"DiagnosticProbe(C={self.C}{fitted})"
