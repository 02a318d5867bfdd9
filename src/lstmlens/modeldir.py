"""Model directories: config.json + model.safetensors + tokenizer.json + metrics.json.

Nothing is ever unpickled: weights are safetensors, everything else JSON. Saving is atomic
(a finished directory replaces the old one in one rename), so a failed or interrupted run
never leaves a half-written directory that :func:`load` would accept.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .errors import ModelFormatError
from .models import build_model

FORMAT = "lstmlens-model"
FORMAT_VERSION = 1
FILES = ("config.json", "model.safetensors", "metrics.json")


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFormatError(f"{path.parent} has no {path.name} ({what})") from None
    except OSError as e:  # a directory in its place, no permission, ...
        raise ModelFormatError(f"cannot read {path} ({what}): {e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"{path} is not valid JSON ({what}): {e}") from None


def is_model_dir(path: str | os.PathLike) -> bool:
    p = Path(path) / "config.json"
    try:
        return json.loads(p.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def save(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    metrics: dict[str, Any] | None = None,
    tokenizer: Any = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to the directory ``path``, atomically.

    ``meta`` holds what a reader needs beside the weights (class names, feature names, the
    data source); an existing directory is replaced only if it is an lstmlens model directory
    or empty.

    Examples
    --------
    >>> save(model, "runs/speech", metrics={"test": {"accuracy": 0.97}})  # doctest: +SKIP
    """
    path = Path(path)
    if path.exists() and not (path.is_dir() and (is_model_dir(path) or not any(path.iterdir()))):
        raise ModelFormatError(
            f"{path} exists and is not an lstmlens model directory; refusing to overwrite it "
            "(choose another --out or remove it)"
        )
    kind = getattr(model, "kind", None)
    if kind is None or not hasattr(model, "config_dict"):
        raise ModelFormatError(
            f"{type(model).__name__} is not an lstmlens model; save() writes models from "
            "lstmlens.models"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; a model dir is like any other
        config = {"format": FORMAT, "format_version": FORMAT_VERSION,
                  "lstmlens_version": __version__, "kind": kind,
                  "config": model.config_dict(), "meta": meta or {}}
        _write_json(tmp / "config.json", config)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": FORMAT,
                                                                  "kind": kind})
        _write_json(tmp / "metrics.json", metrics or {})
        if tokenizer is not None:
            doc = tokenizer.to_json() if hasattr(tokenizer, "to_json") else tokenizer
            _write_json(tmp / "tokenizer.json", doc)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / "previous")
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:  # put the previous model back where it was
                os.replace(old / "previous", path)
                old.rmdir()
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _tokenizer(doc: Any) -> Any:
    """A :class:`Tokenizer` (or a ``{"source", "target"}`` pair of them) from its JSON."""
    from .tokenizers import Tokenizer

    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "lstmlens-tokenizer":
        return Tokenizer.from_json(doc)
    if kind == "lstmlens-tokenizer-pair":
        return {side: Tokenizer.from_json(doc.get(side)) for side in ("source", "target")}
    raise ModelFormatError("tokenizer.json is not an lstmlens tokenizer (its 'type' must be "
                           "'lstmlens-tokenizer' or 'lstmlens-tokenizer-pair')")


def load(path: str | os.PathLike) -> nn.Module:
    """Read a model directory written by :func:`save`; returns the model in eval mode.

    The model gets ``model.meta`` (class names, data source, ...), ``model.metrics`` and
    ``model.tokenizer`` (``None`` for feature models). Truncated, corrupted or mismatched
    files give a :class:`ModelFormatError` naming the file and the problem.

    Examples
    --------
    >>> model = load("runs/speech")  # doctest: +SKIP
    """
    path = Path(path)
    accepted = "a model directory holds config.json, model.safetensors and metrics.json"
    if not path.is_dir():
        raise ModelFormatError(f"{path} is not a directory; {accepted}")
    cfg = _read_json(path / "config.json", "the model's config")
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise ModelFormatError(f"{path / 'config.json'} is not an lstmlens model config; "
                               f"{accepted}")
    version = cfg.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFormatError(f"{path / 'config.json'} has format_version {version!r}; "
                               f"a whole number ≤ {FORMAT_VERSION} is accepted")
    if version > FORMAT_VERSION:
        raise ModelFormatError(f"{path} was written by a newer lstmlens (format "
                               f"{cfg['format_version']}); upgrade lstmlens to read it")
    model = build_model(str(cfg.get("kind")), cfg.get("config") or {})
    weights = path / "model.safetensors"
    if not weights.exists():
        raise ModelFormatError(f"{path} has no model.safetensors; {accepted}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFormatError(f"{weights} is truncated or corrupted: {e}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k} {tuple(state[k].shape)} (config wants {tuple(v.shape)})"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    wrong += [f"{k} has dtype {state[k].dtype} (config wants {v.dtype})"
              for k, v in expected.items()
              if k in state and state[k].is_floating_point() != v.is_floating_point()]
    if missing or unexpected or wrong:
        parts = [f"missing {missing[:5]}" if missing else "",
                 f"unexpected {unexpected[:5]}" if unexpected else "",
                 f"wrong shapes/dtypes {wrong[:5]}" if wrong else ""]
        raise ModelFormatError(f"{weights} does not match config.json: "
                               + "; ".join(p for p in parts if p))
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ModelFormatError(f"{weights} is corrupted: NaN/inf in {bad[:5]}")
    model.load_state_dict(state)
    model.eval()
    model.meta = cfg.get("meta") or {}
    model.metrics = _read_json(path / "metrics.json", "the model's metrics") \
        if (path / "metrics.json").exists() else {}
    for name, value in (("config.json's meta", model.meta), ("metrics.json", model.metrics)):
        if not isinstance(value, dict):
            raise ModelFormatError(f"{path}: {name} must be a JSON object, got "
                                   f"{type(value).__name__}")
    tok = path / "tokenizer.json"
    model.tokenizer = _tokenizer(_read_json(tok, "the model's tokenizer")) if tok.exists() \
        else None
    model.path = path
    return model
