"""lstmlens's own models (one module per model kind) and the registry that loads them."""

from .classifier import AdditiveAttention, ClassifierConfig, LSTMClassifier
from .registry import MODEL_KINDS, build_model, register_model

__all__ = ["AdditiveAttention", "ClassifierConfig", "LSTMClassifier", "MODEL_KINDS",
           "build_model", "register_model"]
