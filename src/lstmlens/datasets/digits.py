"""Spoken digits "zero" … "nine": synthetic voices for training, human recordings for testing.

Training audio is synthesised with ``espeak-ng`` (Debian package ``espeak-ng``): every
English voice of the installed espeak-ng (MBROLA voices excluded: they need extra packages)
combined with every voice variant (``espeak-ng --voices=variant``), at seeded random speeds
and pitches. The variants are split into train/validation/test groups, so the validation and
test sets are spoken by voice variants — and hence voice/variant combinations — never heard
in training ("held-out synthetic voices"). Each training speaker's features are computed
with a random frequency warp (vocal-tract-length augmentation); held-out ones never are.

The out-of-distribution test set is real speech: the digit prompts recorded by a human
speaker (Allison Smith) for the Asterisk PBX, Debian package ``asterisk-core-sounds-en-wav``
(``/usr/share/asterisk/sounds/en_US_f_Allison/digits/0.wav`` … ``9.wav``, 8 kHz,
CC-BY-SA-3.0).

Features (see :mod:`lstmlens.audio`) are cached in ``<cache>/processed/digits-<key>.npz``,
keyed by the espeak-ng version, the list of voice settings and the feature settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from ..audio import FeatureSettings, mfcc_frames, read_wav
from ..errors import InputError
from .base import SequenceData, Splits
from .fetch import DataUnavailableError, atomic_output, resolve_cache_dir

__all__ = [
    "DIGIT_WORDS", "ESPEAK_PACKAGE", "RECORDINGS_PACKAGE", "RECORDINGS_ROOT", "VoiceSetting",
    "espeak_version", "espeak_voices", "find_real_recordings", "load_digits",
    "load_real_digits", "synthesize", "voice_plan",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ESPEAK_PACKAGE = "espeak-ng"
RECORDINGS_PACKAGE = "asterisk-core-sounds-en-wav"
RECORDINGS_ROOT = Path("/usr/share/asterisk/sounds")
SPLITS = ("train", "validation", "test")
# Speakers (voice/variant combinations) per split, and one utterance of each word per speaker.
SIZES = {"full": (240, 30, 50), "quick": (24, 5, 8)}
SPEED_RANGE = (110, 220)  # words per minute (espeak-ng -s)
PITCH_RANGE = (15, 85)  # espeak-ng -p, 0..99
WARP_RANGE = (0.85, 1.15)  # frequency warp of training speakers' features (log-uniform)
_FORMAT_VERSION = 1


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DataUnavailableError(
            "espeak-ng not found on PATH; it synthesises the training audio of the digits "
            f"task. Install it with `apt-get install {ESPEAK_PACKAGE}` (Debian/Ubuntu) or "
            "`brew install espeak-ng` (macOS)."
        )
    return exe


def _run(args: list[str], timeout: float = 60.0) -> str:
    cmd = [_espeak(), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DataUnavailableError(f"could not run {' '.join(cmd)!r}: {e}") from None
    if proc.returncode != 0:
        raise DataUnavailableError(f"{' '.join(cmd)!r} failed with status {proc.returncode}: "
                                   f"{(proc.stderr or proc.stdout).strip()[-500:]}")
    return proc.stdout


def espeak_version() -> str:
    """The installed espeak-ng version, e.g. ``"1.51"``.

    Examples
    --------
    >>> espeak_version()  # doctest: +SKIP
    '1.51'
    """
    out = _run(["--version"])
    m = re.search(r"text-to-speech:\s*(\S+)", out)
    if m is None:
        raise DataUnavailableError(f"cannot read the espeak-ng version from {out.strip()!r}")
    return m.group(1)


def espeak_voices() -> tuple[list[str], list[str]]:
    """The English voices (voice files; MBROLA voices and variants excluded) and the voice
    variants, sorted.

    Examples
    --------
    >>> voices, variants = espeak_voices()  # doctest: +SKIP
    >>> voices[:2], len(variants)  # doctest: +SKIP
    (['gmw/en', 'gmw/en-029'], 101)
    """
    voices = set()
    for line in _run(["--voices=en"]).splitlines()[1:]:
        cols = line.split()  # Pty, Language, Age/Gender, VoiceName, File, [Other languages]
        if len(cols) >= 5 and "/" in cols[4] and not cols[4].startswith(("mb/", "!v/")):
            voices.add(cols[4])
    variants = set()
    for line in _run(["--voices=variant"]).splitlines()[1:]:
        m = re.search(r"\s!v/(.+?)(?:\s{2,}|\s*$)", line)  # a variant name may hold a space
        if m:
            variants.add(m.group(1))
    if not voices or not variants:
        raise DataUnavailableError(f"espeak-ng lists {len(voices)} English voices and "
                                   f"{len(variants)} variants; both are needed (reinstall "
                                   f"{ESPEAK_PACKAGE})")
    return sorted(voices), sorted(variants)


@dataclass(frozen=True)
class VoiceSetting:
    """One synthetic speaker: an espeak-ng voice, a variant, a speed and a pitch.

    Examples
    --------
    ``warp`` is not an espeak-ng setting: it scales the frequency axis of the features
    (vocal-tract-length augmentation, see :func:`~lstmlens.audio.mfcc_frames`); training
    speakers get a random one, held-out speakers 1.

    >>> VoiceSetting("gmw/en-US", "f3", 150, 50).espeak_args()
    ['-v', 'gmw/en-US+f3', '-s', '150', '-p', '50']
    """

    voice: str
    variant: str
    speed: int
    pitch: int
    warp: float = 1.0

    @property
    def speaker(self) -> str:
        return f"{self.voice}+{self.variant}"

    def espeak_args(self) -> list[str]:
        return ["-v", self.speaker, "-s", str(self.speed), "-p", str(self.pitch)]


def synthesize(word: str, setting: VoiceSetting | None = None,
               workdir: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, int]:
    """Speak ``word`` with espeak-ng; return the mono signal in [-1, 1] and its rate (Hz).

    Examples
    --------
    >>> x, rate = synthesize("seven", VoiceSetting("gmw/en-US", "f3", 150, 50))
    ... # doctest: +SKIP
    >>> rate  # doctest: +SKIP
    22050
    """
    setting = setting or VoiceSetting("gmw/en-US", "f3", 150, 50)
    if not word.strip() or word.lstrip().startswith("-"):
        raise DataUnavailableError(f"cannot synthesise {word!r}: give a non-empty word")
    with tempfile.TemporaryDirectory(prefix="lstmlens-espeak-", dir=workdir) as tmp:
        out = Path(tmp) / "word.wav"
        _run([*setting.espeak_args(), "-w", os.fspath(out), word])
        return read_wav(out)


def voice_plan(voices: list[str], variants: list[str], sizes: tuple[int, int, int],
               seed: int = 0, augment: bool = True) -> dict[str, list[VoiceSetting]]:
    """Seeded speakers per split; the split's variants are disjoint from the other splits'.

    Variants are shuffled and cut 70/15/15 into train/validation/test groups; each split then
    draws distinct voice/variant combinations from its own group, each with a random speed in
    ``SPEED_RANGE`` and pitch in ``PITCH_RANGE``. Training speakers also get a feature warp
    drawn log-uniformly from ``WARP_RANGE`` (``augment=True``); held-out speakers get none.

    Examples
    --------
    >>> plan = voice_plan(["en", "en-us"], [f"v{k}" for k in range(20)], (4, 2, 2))
    >>> [len(plan[s]) for s in ("train", "validation", "test")]
    [4, 2, 2]
    """
    if len(variants) < 3:
        raise DataUnavailableError(f"need at least 3 voice variants to hold some out, got "
                                   f"{len(variants)}")
    rng = np.random.default_rng(seed)
    order = [variants[i] for i in rng.permutation(len(variants))]
    n_val = max(1, round(0.15 * len(order)))
    cut = {"train": order[: len(order) - 2 * n_val],
           "validation": order[len(order) - 2 * n_val: len(order) - n_val],
           "test": order[len(order) - n_val:]}
    plan = {}
    for split, n in zip(SPLITS, sizes, strict=True):
        combos = [(v, w) for w in cut[split] for v in voices]
        if n > len(combos):
            raise DataUnavailableError(f"{split}: asked for {n} speakers, only {len(combos)} "
                                       "voice/variant combinations are available")
        pick = rng.choice(len(combos), size=n, replace=False)
        plan[split] = []
        for i in pick:
            speed = int(rng.integers(*SPEED_RANGE, endpoint=True))
            pitch = int(rng.integers(*PITCH_RANGE, endpoint=True))
            warp = float(np.exp(rng.uniform(*np.log(WARP_RANGE))))
            use = augment and split == "train"
            plan[split].append(VoiceSetting(*combos[i], speed, pitch, round(warp, 3) if use
                                            else 1.0))
    return plan


def _speaker_features(setting: VoiceSetting, features: FeatureSettings) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="lstmlens-digits-") as tmp:
        out = []
        for k, word in enumerate(DIGIT_WORDS):
            wav = Path(tmp) / f"{k}.wav"
            _run([*setting.espeak_args(), "-w", os.fspath(wav), word])
            out.append(mfcc_frames(wav, settings=features, warp=setting.warp))
        return out


def _read_cache(path: Path, key: str, count: int) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        off = arrays["offsets"]
        ok = str(arrays["key"]) == key and len(off) == count + 1 and off[-1] == len(
            arrays["values"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return arrays if ok else None


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_output(path) as fh:
        np.savez_compressed(fh, **arrays)


def _synthesise_all(settings: list[VoiceSetting], features: FeatureSettings, workers: int,
                    report: Callable[[int], None] | None) -> list[list[np.ndarray]]:
    results: list[list[np.ndarray]] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for k, feats in enumerate(pool.map(lambda s: _speaker_features(s, features), settings)):
            results.append(feats)  # map keeps the input order: deterministic
            if report is not None:
                report(k + 1)
    return results


def load_digits(*, quick: bool = False, seed: int = 0,
                sizes: tuple[int, int, int] | None = None,
                features: FeatureSettings | None = None,
                cache_dir: str | os.PathLike[str] | None = None, workers: int = 2,
                augment: bool = True, report: Callable[[str], None] | None = None) -> Splits:
    """Synthesise (or read from the cache) the spoken-digit splits with held-out voices.

    Parameters
    ----------
    quick : bool
        Small setting for tests: ``SIZES["quick"]`` speakers instead of ``SIZES["full"]``.
    seed : int
        Seed of the variant split and of the speakers' speeds and pitches.
    sizes : (int, int, int), optional
        Speakers for train/validation/test (each speaks the ten words once).
    features : FeatureSettings, optional
        MFCC settings (default :class:`~lstmlens.audio.FeatureSettings`()).
    cache_dir : path, optional
        Cache root (default ``$LSTMLENS_CACHE`` or ``~/.cache/lstmlens``).
    workers : int
        espeak-ng processes run at once.
    augment : bool
        Warp the frequency axis of each training speaker's features by a random factor
        (vocal-tract-length augmentation); held-out speakers are never warped.
    report : callable, optional
        Called with one-line progress messages.

    Returns
    -------
    Splits
        float32 MFCC frames ``[T_i, F]``, labels 0..9; ``source`` records the espeak-ng
        version, the speakers of every split and the feature settings.

    Raises
    ------
    DataUnavailableError
        espeak-ng is missing or fails.

    Examples
    --------
    >>> splits = load_digits(quick=True)  # doctest: +SKIP
    >>> len(splits.train), splits.classes[7]  # doctest: +SKIP
    (240, 'seven')
    """
    features = features or FeatureSettings()
    sizes = tuple(sizes or SIZES["quick" if quick else "full"])
    if len(sizes) != 3 or any(not isinstance(n, int) or n < 1 for n in sizes):
        raise InputError(f"sizes must be three whole numbers ≥ 1 (train, validation, test "
                         f"speakers), got {sizes!r}")
    version = espeak_version()
    plan = voice_plan(*espeak_voices(), sizes, seed, augment)
    flat = [(split, s) for split in SPLITS for s in plan[split]]
    key_doc = {"format": _FORMAT_VERSION, "espeak_ng": version, "words": DIGIT_WORDS,
               "python_speech_features": metadata.version("python_speech_features"),
               "features": features.to_dict(), "speakers": [[sp, asdict(s)] for sp, s in flat]}
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()
    path = resolve_cache_dir(cache_dir) / "processed" / f"digits-{key[:16]}.npz"
    arrays = _read_cache(path, key, 10 * len(flat))
    seconds = 0.0
    if arrays is None:
        start = time.perf_counter()
        n = len(flat)
        step = max(1, n // 10)

        def tick(done: int) -> None:
            if report is not None and (done % step == 0 or done == n):
                report(f"espeak-ng {version}: {done}/{n} speakers × 10 words synthesised")

        per_speaker = _synthesise_all([s for _, s in flat], features, workers, tick)
        seqs = [x for feats in per_speaker for x in feats]
        arrays = {
            "key": np.array(key),
            "values": np.concatenate(seqs).astype(np.float32),
            "offsets": np.concatenate([[0], np.cumsum([len(x) for x in seqs])]).astype(np.int64),
            "seconds": np.array(time.perf_counter() - start),
        }
        _write_cache(path, arrays)
        seconds = float(arrays["seconds"])
    elif report is not None:
        report(f"spoken digits read from the cache {path}")
    off = arrays["offsets"]
    seqs = [arrays["values"][a:b] for a, b in zip(off[:-1], off[1:], strict=True)]
    data, start_i = {}, 0
    for split in SPLITS:
        n = 10 * len(plan[split])
        data[split] = SequenceData(seqs[start_i:start_i + n], np.tile(np.arange(10), n // 10))
        start_i += n
    source = {
        "name": "spoken digits synthesised with espeak-ng",
        "espeak_ng_version": version, "apt_package": ESPEAK_PACKAGE, "seed": seed,
        "held_out": "validation and test variants never occur in training",
        "speakers": {split: [asdict(s) for s in plan[split]] for split in SPLITS},
        "features": features.to_dict(), "cache": os.fspath(path),
        "synthesis_seconds": seconds or float(arrays["seconds"]),
        "synthesis_cached": not seconds,
    }
    return Splits(train=data["train"], validation=data["validation"], test=data["test"],
                  classes=list(DIGIT_WORDS), feature_names=features.feature_names,
                  source=source)


def find_real_recordings(root: str | os.PathLike[str] | None = None) -> list[tuple[Path, int]]:
    """Recordings of the digits below ``root``: ``(path, digit)``, sorted, duplicates removed.

    A recording is a file named ``0.wav`` … ``9.wav`` or ``zero.wav`` … ``nine.wav`` (any
    case) directly inside ``root`` or inside any folder named ``digits`` below it; symbolic
    links to the same file count once. The default root is the Asterisk sounds folder.

    Examples
    --------
    >>> [p.name for p, d in find_real_recordings()][:3]  # doctest: +SKIP
    ['0.wav', '1.wav', '2.wav']
    """
    base = Path(root) if root is not None else RECORDINGS_ROOT
    names = {**{f"{k}.wav": k for k in range(10)},
             **{f"{w}.wav": k for k, w in enumerate(DIGIT_WORDS)}}
    found: dict[Path, int] = {}
    seen_dirs: set[Path] = set()
    if base.is_dir():
        for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
            real = Path(dirpath).resolve()
            if real in seen_dirs:
                dirnames[:] = []  # a symlink back to a folder already walked
                continue
            seen_dirs.add(real)
            dirnames.sort()
            if Path(dirpath) != base and Path(dirpath).name.lower() != "digits":
                continue
            for f in sorted(filenames):
                if f.lower() in names:
                    found.setdefault(Path(dirpath, f).resolve(), names[f.lower()])
    return sorted(found.items(), key=lambda pd: (pd[1], os.fspath(pd[0])))


def load_real_digits(root: str | os.PathLike[str] | None = None,
                     features: FeatureSettings | None = None) -> tuple[SequenceData, list[Path]]:
    """MFCC frames of every real recording :func:`find_real_recordings` finds, and their paths.

    Raises
    ------
    DataUnavailableError
        No recording found (names the apt package that ships them).

    Examples
    --------
    >>> real, paths = load_real_digits()  # doctest: +SKIP
    >>> len(real), real.labels[:3].tolist()  # doctest: +SKIP
    (10, [0, 1, 2])
    """
    found = find_real_recordings(root)
    if not found:
        where = Path(root) if root is not None else RECORDINGS_ROOT
        raise DataUnavailableError(
            f"no recordings of the digits (0.wav … 9.wav or zero.wav … nine.wav, in the folder "
            f"or in 'digits' folders below it) under {where}. Install the Asterisk prompts with "
            f"`apt-get install {RECORDINGS_PACKAGE}`, or pass data=DIR (--data DIR) holding "
            "your own recordings."
        )
    features = features or FeatureSettings()
    inputs = [mfcc_frames(p, settings=features) for p, _ in found]
    return SequenceData(inputs, np.array([d for _, d in found])), [p for p, _ in found]
