"""Audio in: WAV files → mono signal → MFCC frames ``[frames, features]`` for an LSTM.

The pipeline is the same for synthetic and recorded speech, so that a model trained on one
sees the other through the same lens:

1. read an integer-PCM WAV (stdlib :mod:`wave`) and average its channels to mono;
2. resample to one rate (default 8 kHz, the telephone rate) with a polyphase filter;
3. trim leading and trailing silence: keep the span of 10 ms frames whose energy lies within
   ``trim_db`` of the loudest frame, plus a short margin;
4. scale to a peak of 1 (loudness differs between sources; the log-energy coefficient would
   otherwise carry it);
5. MFCCs from ``python_speech_features`` (Hamming-windowed 25 ms frames every 10 ms, mel
   filters, DCT, liftering; coefficient 0 replaced by the frame's log energy), then optional
   deltas and per-utterance cepstral mean normalisation.
"""

from __future__ import annotations

import os
import wave
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["FeatureSettings", "mfcc_frames", "read_wav", "resample", "trim_silence"]

_PCM_ACCEPTED = ("an uncompressed integer-PCM WAV file (8, 16, 24 or 32 bit, any rate, mono or "
                 "multi-channel)")


@dataclass(frozen=True)
class FeatureSettings:
    """How :func:`mfcc_frames` turns a signal into frames.

    Parameters
    ----------
    sample_rate : int
        Every signal is resampled to this rate (Hz) first.
    numcep : int
        Cepstral coefficients per frame (coefficient 0 is the log frame energy).
    winlen, winstep : float
        Window length and hop in seconds.
    nfilt, nfft : int
        Number of mel filters; FFT size.
    lowfreq, highfreq : float
        Band edges of the mel filterbank in Hz.
    preemph : float
        Pre-emphasis coefficient (0 disables it).
    ceplifter : int
        Sinusoidal lifter length (0 disables it).
    deltas : bool
        Append first-order differences (over ±2 frames) of every coefficient.
    cmn : bool
        Subtract each utterance's mean of the cepstral coefficients (not of the deltas).
    trim_db : float or None
        Silence threshold relative to the loudest 10 ms frame; ``None`` keeps everything.

    Examples
    --------
    >>> FeatureSettings().n_features
    26
    """

    sample_rate: int = 8000
    numcep: int = 13
    winlen: float = 0.025
    winstep: float = 0.01
    nfilt: int = 26
    nfft: int = 512
    lowfreq: float = 100.0
    highfreq: float = 3800.0
    preemph: float = 0.97
    ceplifter: int = 22
    deltas: bool = True
    cmn: bool = True
    trim_db: float | None = -35.0

    def __post_init__(self) -> None:
        if not isinstance(self.sample_rate, int) or self.sample_rate < 1000:
            raise InputError(f"sample_rate must be a whole number of Hz ≥ 1000, got "
                             f"{self.sample_rate!r}")
        if not 0 <= self.lowfreq < self.highfreq <= self.sample_rate / 2:
            raise InputError(f"need 0 ≤ lowfreq < highfreq ≤ sample_rate/2 "
                             f"({self.sample_rate / 2:g} Hz), got {self.lowfreq}..{self.highfreq}")
        if not 1 <= self.numcep <= self.nfilt:
            raise InputError(f"need 1 ≤ numcep ≤ nfilt, got numcep={self.numcep}, "
                             f"nfilt={self.nfilt}")
        if not 0 < self.winstep <= self.winlen or self.winlen * self.sample_rate > self.nfft:
            raise InputError("need 0 < winstep ≤ winlen and a window no longer than nfft "
                             f"samples; got winlen={self.winlen}, winstep={self.winstep}, "
                             f"nfft={self.nfft} at {self.sample_rate} Hz")

    @property
    def n_features(self) -> int:
        """Features per frame: ``numcep``, doubled with deltas."""
        return self.numcep * (2 if self.deltas else 1)

    @property
    def feature_names(self) -> list[str]:
        """``log_energy, mfcc_1, ...`` then ``delta_log_energy, delta_mfcc_1, ...``."""
        base = ["log_energy"] + [f"mfcc_{k}" for k in range(1, self.numcep)]
        return base + ([f"delta_{n}" for n in base] if self.deltas else [])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSettings:
        """Settings from :meth:`to_dict` output; unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown feature setting(s) {unknown}; accepted: {sorted(known)}")
        return cls(**d)


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read an integer-PCM WAV file as a mono float64 signal in [-1, 1] and its rate.

    Raises :class:`~lstmlens.errors.InputError` for a missing, empty, truncated, compressed or
    float file, saying what is accepted.

    Examples
    --------
    >>> x, rate = read_wav("/usr/share/asterisk/sounds/en_US_f_Allison/digits/7.wav")
    ... # doctest: +SKIP
    >>> rate, x.ndim  # doctest: +SKIP
    (8000, 1)
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p} does not exist or is not a file; give {_PCM_ACCEPTED}")
    try:
        with wave.open(os.fspath(p), "rb") as w:
            channels, width, rate, n = (w.getnchannels(), w.getsampwidth(), w.getframerate(),
                                        w.getnframes())
            raw = w.readframes(n)
    except EOFError:
        raise InputError(f"{p} is empty or its WAV header is truncated; give "
                         f"{_PCM_ACCEPTED}") from None
    except wave.Error as e:  # not RIFF/WAVE, or a format tag other than PCM (float, A-law...)
        raise InputError(f"{p} cannot be read as PCM WAV ({e}); give {_PCM_ACCEPTED} (convert "
                         "with e.g. `sox in.wav -b 16 -e signed-integer out.wav`)") from None
    if n == 0 or channels < 1 or rate < 1:
        raise InputError(f"{p} holds no audio ({n} frames, {channels} channels, {rate} Hz); "
                         f"give {_PCM_ACCEPTED}")
    if len(raw) < n * channels * width:
        raise InputError(f"{p} is truncated: its header announces {n} frames but only "
                         f"{len(raw) // (channels * width)} are present")
    if width == 1:  # 8-bit WAV is unsigned
        x = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width in (2, 4):
        x = np.frombuffer(raw, f"<i{width}").astype(np.float64) / float(2 ** (8 * width - 1))
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64) / float(1 << 23)
    else:
        raise InputError(f"{p} has {8 * width}-bit samples; give {_PCM_ACCEPTED}")
    return x.reshape(-1, channels).mean(axis=1), int(rate)


@lru_cache(maxsize=8)
def _lowpass(up: int, down: int) -> np.ndarray:
    """Kaiser-windowed sinc low-pass for a polyphase ``up/down`` resampler, designed once."""
    from scipy.signal import firwin

    m = max(up, down)
    return firwin(20 * m + 1, 1.0 / m, window=("kaiser", 5.0))  # (taps,); scipy applies the gain


def resample(signal: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a 1-D signal with a polyphase anti-aliasing filter (exact rational ratio).

    Examples
    --------
    >>> resample(np.zeros(22050), 22050, 8000).shape
    (8000,)
    """
    x = np.asarray(signal, dtype=np.float64)
    if from_rate == to_rate:
        return x
    from scipy.signal import resample_poly

    ratio = Fraction(int(to_rate), int(from_rate))
    up, down = ratio.numerator, ratio.denominator
    return resample_poly(x, up, down, window=_lowpass(up, down))


def trim_silence(signal: np.ndarray, sample_rate: int, threshold_db: float = -35.0,
                 margin_s: float = 0.02) -> np.ndarray:
    """Cut leading and trailing silence: keep the 10 ms frames within ``threshold_db`` of the
    loudest one, from the first to the last, plus ``margin_s`` on each side.

    Examples
    --------
    >>> x = np.concatenate([np.zeros(800), np.ones(400), np.zeros(800)])
    >>> len(trim_silence(x, 8000))
    720
    """
    hop = max(1, int(round(0.01 * sample_rate)))
    n = len(signal) // hop
    if n == 0:
        return signal
    energy = (signal[: n * hop].reshape(n, hop) ** 2).mean(axis=1)  # (frames,)
    peak = energy.max()
    if peak <= 0:
        raise InputError("the signal is silent (all zeros); nothing to recognise")
    loud = np.flatnonzero(energy >= peak * 10.0 ** (threshold_db / 10.0))
    margin = int(round(margin_s * sample_rate))
    start = max(0, loud[0] * hop - margin)
    stop = min(len(signal), (loud[-1] + 1) * hop + margin)
    return signal[start:stop]


def mfcc_frames(path_or_array: str | os.PathLike[str] | np.ndarray,
                sample_rate: int | None = None,
                settings: FeatureSettings | None = None, *, warp: float = 1.0) -> np.ndarray:
    """MFCC frames of a WAV file or a 1-D signal: float32 ``[frames, settings.n_features]``.

    Parameters
    ----------
    path_or_array : path or np.ndarray
        A PCM WAV file, or a mono signal (floats, any scale).
    sample_rate : int, optional
        The rate of ``path_or_array`` when it is an array (required then); a file's own rate
        is read from its header, so leave it out for a path.
    settings : FeatureSettings, optional
        Resampling, trimming and MFCC settings (default :class:`FeatureSettings`()).
    warp : float
        Frequency-axis warp for vocal-tract-length augmentation (training data only): the mel
        filterbank's band edges are multiplied by ``warp`` (the upper one clipped at the
        Nyquist frequency), so the frames resemble those of a speaker whose formants lie
        ``1/warp`` times as high. 1 leaves the features as they are.

    Examples
    --------
    >>> t = np.arange(8000) / 8000
    >>> mfcc_frames(np.sin(2 * np.pi * 440 * t), sample_rate=8000).shape
    (99, 26)
    """
    try:
        from python_speech_features import delta, mfcc
    except ImportError:  # an optional dependency: say how to get it
        raise ImportError("MFCC features need python_speech_features and scipy: "
                          "pip install python_speech_features==0.6 scipy") from None

    s = settings or FeatureSettings()
    if not 0.5 <= warp <= 2.0:
        raise InputError(f"warp must lie in [0.5, 2], got {warp!r}")
    if isinstance(path_or_array, (str, os.PathLike)):
        if sample_rate is not None:
            raise InputError("sample_rate is read from the WAV header; pass it only with an "
                             "array")
        x, rate = read_wav(path_or_array)
    else:
        if sample_rate is None or isinstance(sample_rate, bool) or not isinstance(
                sample_rate, (int, np.integer)) or sample_rate < 1000:
            raise InputError(f"an array needs its sample_rate in Hz (a whole number ≥ 1000), "
                             f"got {sample_rate!r}")
        x = np.asarray(path_or_array)
        if x.ndim != 1 or x.size == 0 or not np.issubdtype(x.dtype, np.number):
            raise InputError(f"a signal must be a non-empty 1-D array of numbers, got "
                             f"{x.dtype} {x.shape}")
        x = x.astype(np.float64)
        if not np.isfinite(x).all():
            raise InputError("the signal contains NaN or inf; only finite samples are accepted")
        rate = int(sample_rate)
    x = resample(x, rate, s.sample_rate)
    if s.trim_db is not None:
        x = trim_silence(x, s.sample_rate, s.trim_db)
    peak = np.abs(x).max()
    if peak == 0:
        raise InputError("the signal is silent (all zeros); nothing to recognise")
    x = x / peak
    feats = mfcc(x, samplerate=s.sample_rate, winlen=s.winlen, winstep=s.winstep,
                 numcep=s.numcep, nfilt=s.nfilt, nfft=s.nfft, lowfreq=s.lowfreq * warp,
                 highfreq=min(s.highfreq * warp, s.sample_rate / 2), preemph=s.preemph,
                 ceplifter=s.ceplifter, appendEnergy=True, winfunc=np.hamming)  # (frames, numcep)
    if s.cmn:
        feats = feats - feats.mean(axis=0, keepdims=True)
    if s.deltas:
        feats = np.concatenate([feats, delta(feats, 2)], axis=1)  # (frames, 2·numcep)
    return feats.astype(np.float32)
