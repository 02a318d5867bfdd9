"""Tiny models for the neuron-analysis tests (random weights: fast, and enough to check
shapes, references and pages)."""

from __future__ import annotations

import inspect
import json.decoder
from pathlib import Path

import torch

from lstmlens.modeldir import save
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.models.language_model import CharLanguageModel, LanguageModelConfig
from lstmlens.tokenizers import Tokenizer

SOURCE = inspect.getsource(json.decoder)
TEXTS = ["a good film", "a bad , dull film", "<script>alert(1)</script> is not a film",
         "great acting and a gripping story", "boring and far too long", "not good at all"]


def code_pieces(n: int = 12, size: int = 200) -> list[str]:
    return [SOURCE[i:i + size] for i in range(0, n * size, size)]


def char_lm(path: Path, hidden: int = 16, seed: int = 0) -> Path:
    """A character LM directory on Python source (task textgen/code), random weights."""
    torch.manual_seed(seed)
    tok = Tokenizer("char", lowercase=False, max_vocab=None).fit([SOURCE])
    model = CharLanguageModel(LanguageModelConfig(vocab_size=len(tok), embedding_dim=8,
                                                  hidden_sizes=[hidden]))
    return save(model, path, tokenizer=tok.to_json(),
                metrics={"test": {"bits_per_char": 3.0}},
                meta={"task": "textgen/code", "corpus": "code", "seed": seed})


def word_classifier(path: Path, hidden: int = 8, seed: int = 0,
                    bidirectional: bool = False) -> Path:
    """A word-level sentiment-like classifier directory, random weights."""
    torch.manual_seed(seed)
    tok = Tokenizer("word").fit(TEXTS)
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=len(tok),
                                            embedding_dim=6, hidden_sizes=[hidden],
                                            bidirectional=bidirectional))
    return save(model, path, tokenizer=tok.to_json(),
                metrics={"test": {"accuracy": 0.5}},
                meta={"task": "tiny", "classes": ["negative", "positive"], "seed": seed})
