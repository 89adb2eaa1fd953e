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


WHOLE_DAG_FILES = ("test_e2e_dvc.py", "test_gpu_check.py")


def pytest_collection_modifyitems(items):
    """The two files that run the whole DAG take over half the suite's time between them. With
    `--dist loadfile --no-loadscope-reorder` (pyproject.toml) they are handed out first, one to each
    worker, so neither starts last while the other worker sits idle (README: Development)."""
    items.sort(key=lambda item: item.path.name not in WHOLE_DAG_FILES)
