import pytest
import torch
from accelerate.state import AcceleratorState


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The test models are tiny and gain nothing from a second thread, while on a busy 2-core
    machine two OpenMP threads spin against each other (measured 10x slower). The library itself
    keeps torch's default; subprocess tests set OMP_NUM_THREADS=1 for the same reason."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """accelerate keeps one process-wide state (device, precision, process group); each test starts
    without the one an earlier test left, so no result depends on the order the tests ran in."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
