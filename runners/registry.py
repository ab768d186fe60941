"""The runners, the one list of them. Each is ``runners/<name>.py`` with ``main(argv)``,
and ``runners/<name>_steps.py`` with ``build_arms``, which builds its arms as the runner
does for one training step (``runners.common.arm_steps``); what goes over every runner
(reproduce.py, a launcher's jobs, the GPU check and the benchmarks, the tests) reads this
list."""
import importlib
from types import ModuleType
from typing import Callable

RUNNERS = ("cswm", "sort_of_clevr", "clutrr", "circles")  # the main job first


def runner_module(name: str) -> ModuleType:
    """``runners/<name>.py``, imported; KeyError for a name that is not a runner."""
    if name not in RUNNERS:
        raise KeyError(f"no runner {name!r} (runners: {', '.join(RUNNERS)})")
    return importlib.import_module(f"runners.{name}")


def arm_builder(name: str) -> Callable[..., dict]:
    """``runners/<name>_steps.py``'s ``build_arms`` (``runners.common.arm_steps``)."""
    runner_module(name)
    return importlib.import_module(f"runners.{name}_steps").build_arms
