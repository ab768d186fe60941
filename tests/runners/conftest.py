"""Fixtures shared by the runners' tests."""
import pytest

from patches import vendor
from runners import cswm_data


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
