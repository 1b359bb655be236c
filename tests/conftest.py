from __future__ import annotations

import os

import pytest
import torch

# Without a GPU the Triton kernels run under Triton's interpreter (on CPU tensors): the flag is read when the kernels
# are decorated, so it must be set before kanconvs is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
# The CPU passes compile with inductor by default; compiling them in every test (and worker) would dominate the
# suite's time. Tests of the compiled passes turn it on themselves (test_kernels.py).
os.environ.setdefault("KANCONVS_COMPILE", "0")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist runs one worker per core: one intra-op thread each, or the workers' OpenMP pools oversubscribe
    # the cores (several times slower on the 2-core CI machine).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
