"""Fixtures for every test."""
import pytest
import torch

from patches import vendor
from runners import cswm_data


@pytest.fixture(autouse=True)
def torch_settings_restored():
    """Runners pin the thread count and ask for deterministic kernels (runners.common.seeding);
    undo that after each test, so no test runs under settings another one left behind."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


@pytest.fixture(scope="session")
def cswm_upstream():
    return vendor.checkout("c-swm")


@pytest.fixture(scope="session")
def cswm_data_dir(cswm_upstream, tmp_path_factory):
    """Tiny Space Invaders training set (4 episodes) and the smallest eval set (100), made
    by the upstream's data_gen/env.py."""
    directory = tmp_path_factory.mktemp("cswm-data")
    cswm_data.ensure_dataset(cswm_upstream, directory, "space", "train", 4)
    cswm_data.ensure_dataset(cswm_upstream, directory, "space", "eval", 100)
    return directory
