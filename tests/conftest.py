import os

import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
# One thread: deterministic, and immune to a busy machine's oversubscription.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def torch_threads():
    """``torch_threads(n)`` sets torch's thread count for one test; restored afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)
