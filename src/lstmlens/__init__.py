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
from .evaluation import evaluate  # noqa: E402
from .explaining import explain  # noqa: E402
from .extraction import AutomatonExtraction, extract_automaton  # noqa: E402
from .keras_import import from_keras  # noqa: E402
from .methods import method_names  # noqa: E402
from .modeldir import load, save  # noqa: E402
from .models import ClassifierConfig, LSTMClassifier  # noqa: E402
from .parts import wrap  # noqa: E402
from .rules import PhraseRules, Rule  # noqa: E402
from .store import open_store  # noqa: E402
from .store_index import index_corpus  # noqa: E402
from .trace_result import Trace  # noqa: E402
from .tracing import trace  # noqa: E402
from .training import fit  # noqa: E402

__all__ = [
    "Attribution", "Decomposition", "decompose", "explain", "method_names", "wrap",
    "ClassifierConfig", "InputError", "LSTMClassifier", "LstmlensError", "ModelError",
    "ModelFormatError", "Trace", "__version__", "evaluate", "fit", "from_keras", "load",
    "save", "trace", "AutomatonExtraction", "extract_automaton", "PhraseRules", "Rule",
    "index_corpus", "open_store",
]

from .cells import find_units  # noqa: E402
from .horizon import memory_horizon  # noqa: E402
from .interactions import PhraseHierarchy, phrase_hierarchy  # noqa: E402
from .matching import match_hypothesis  # noqa: E402
from .probes import DiagnosticProbe  # noqa: E402
from .report import write_report  # noqa: E402
from .saturation import saturation  # noqa: E402
from .states import States, collect_states  # noqa: E402
from .trajectories import trajectories  # noqa: E402

__all__ += ["PhraseHierarchy", "phrase_hierarchy", "DiagnosticProbe", "States",
            "collect_states", "find_units", "match_hypothesis", "memory_horizon",
            "saturation", "trajectories", "write_report"]
