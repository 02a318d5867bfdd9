"""lstmlens: open up LSTM networks — every gate at every step, and why they decide.

>>> import torch, lstmlens
>>> tr = lstmlens.trace(torch.nn.LSTM(12, 32, batch_first=True), torch.randn(2, 9, 12))
>>> tr.layers[0].forward.forget_gate.shape
torch.Size([2, 9, 32])
"""

__version__ = "0.1.0"

from .attribution import Attribution  # noqa: E402
from .decomposition import Decomposition, decompose  # noqa: E402
from .errors import InputError, LstmlensError, ModelError, ModelFormatError  # noqa: E402
from .explaining import explain  # noqa: E402
from .keras_import import from_keras  # noqa: E402
from .methods import method_names  # noqa: E402
from .modeldir import load, save  # noqa: E402
from .models import ClassifierConfig, LSTMClassifier  # noqa: E402
from .parts import wrap  # noqa: E402
from .trace_result import Trace  # noqa: E402
from .tracing import trace  # noqa: E402
from .training import evaluate, fit  # noqa: E402

__all__ = [
    "Attribution", "Decomposition", "decompose", "explain", "method_names", "wrap",
    "ClassifierConfig", "InputError", "LSTMClassifier", "LstmlensError", "ModelError",
    "ModelFormatError", "Trace", "__version__", "evaluate", "fit", "from_keras", "load",
    "save", "trace",
]
