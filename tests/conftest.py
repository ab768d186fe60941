"""Fixtures for every test, and the test process's fixed hash seed."""
import os
import sys

import pytest
import torch

from patches import vendor
from runners import cswm_data
from runners.clutrr import HASH_SEED


def pytest_configure(config):
    """Restart the test command with PYTHONHASHSEED fixed, as every command that runs CLUTRR
    does (``runners.clutrr.with_fixed_hash_seed``; its jobs get it too): the upstream maps
    entities through the iteration order of sets of names, so a CLUTRR run made in this
    process gives the numbers of the script and of its jobs only under the same seed."""
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:
        config.pluginmanager.getplugin("capturemanager").stop_global_capturing()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, "PYTHONHASHSEED": HASH_SEED})


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


class CudaTouched(AssertionError):
    """The launching process touched CUDA."""


@pytest.fixture
def login_node(monkeypatch):
    """A cluster's login node for ``--launcher slurm``: sbatch and srun are there, no GPU
    is, and any CUDA call in this process fails the test (a real one would crash, or hold
    a GPU context that is not this process's to hold). submitit's submission is replaced
    by GPU nodes that run each job as submitted, except on the CPU (this machine has no
    GPU): with ``--device cuda`` read as ``--device cpu``, in this process, CUDA still
    untouchable. Returns the argv of each job it ran."""
    from runners.common import launch, runs

    def forbidden(name):
        def touched(*args, **kwargs):  # one function per name: torch's tracing rules key on them
            raise CudaTouched(f"the launching process called {name}")
        return touched

    for name in ("init", "_lazy_init", "set_device", "synchronize", "current_device", "empty_cache",
                 "max_memory_allocated", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, forbidden(f"torch.cuda.{name}"))
    monkeypatch.setattr(torch.Tensor, "cuda", forbidden("Tensor.cuda"))
    monkeypatch.setattr(torch.nn.Module, "cuda", forbidden("Module.cuda"))
    monkeypatch.setattr(launch.shutil, "which", lambda command: f"/usr/bin/{command}")
    ran = []

    def gpu_nodes(jobs, launch_, folder, runner, is_saved, seconds_left):
        for job in jobs:
            argv = list(job.argv)
            argv[argv.index("--device") + 1] = "cpu"
            ran.append(argv)
            launch.RunJob()(runner, argv)

    monkeypatch.setattr(runs, "execute", gpu_nodes)
    return ran
