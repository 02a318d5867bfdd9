"""Containers shared by all data set loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SequenceData", "Splits"]


@dataclass
class SequenceData:
    """A labelled set of variable-length sequences.

    Parameters
    ----------
    inputs : list of np.ndarray
        One array per sequence, shape ``[T_i, n_features]``.
    labels : np.ndarray
        Integer class index per sequence, shape ``[N]``.

    Examples
    --------
    >>> import numpy as np
    >>> sd = SequenceData([np.zeros((3, 2), np.float32)], np.array([0]))
    >>> len(sd), sd.lengths.tolist()
    (1, [3])
    """

    inputs: list[np.ndarray]
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.ndim != 1 or len(self.labels) != len(self.inputs):
            raise ValueError(
                f"labels must be 1-D with one entry per sequence: got shape "
                f"{self.labels.shape} for {len(self.inputs)} sequences"
            )

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def lengths(self) -> np.ndarray:
        """Sequence lengths ``T_i`` as an int64 array of shape ``[N]``."""
        return np.array([len(x) for x in self.inputs], dtype=np.int64)


@dataclass
class Splits:
    """Train/validation/test splits of one data set, with names and provenance.

    Parameters
    ----------
    train, validation, test : SequenceData
        The three splits.
    classes : list of str
        Class names; ``classes[k]`` is the name of label ``k``.
    feature_names : list of str
        Names of the input features (the last axis of every input).
    source : dict
        Provenance: ``name``, ``requirement``, ``sha256``, ``licence``, ``citation``.

    Examples
    --------
    >>> from lstmlens.datasets import load_japanese_vowels
    >>> splits = load_japanese_vowels()  # doctest: +SKIP
    >>> len(splits.train), splits.classes[0]  # doctest: +SKIP
    (225, 'speaker 1')
    """

    train: SequenceData
    validation: SequenceData
    test: SequenceData
    classes: list[str]
    feature_names: list[str]
    source: dict[str, Any] = field(default_factory=dict)
