"""Errors lstmlens raises for people: each says what was wrong and what is accepted."""

from __future__ import annotations


class LstmlensError(Exception):
    """Base class of every error lstmlens raises on purpose (the CLI prints these in one line)."""


class InputError(LstmlensError, ValueError):
    """The inputs (tensors, lengths, text, arguments) are not what the call accepts."""


class ModelError(LstmlensError, ValueError):
    """The model cannot be handled: no LSTM inside, an unsupported layer or setting."""


class ModelFormatError(LstmlensError, ValueError):
    """A model directory is missing, truncated, corrupted or does not match its config."""
