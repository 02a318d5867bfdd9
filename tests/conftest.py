import os

import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
# One thread: deterministic, and immune to a busy machine's oversubscription.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
