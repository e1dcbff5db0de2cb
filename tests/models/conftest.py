import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # the CI/dev machine has 2 shared cores; tiny models gain nothing from more threads
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
