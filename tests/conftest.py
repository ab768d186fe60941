"""Fixtures for every test."""
import pytest
import torch


@pytest.fixture(autouse=True)
def torch_settings_restored():
    """Runners pin the thread count and ask for deterministic kernels (runners.common.seeding);
    undo that after each test, so no test runs under settings another one left behind."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
