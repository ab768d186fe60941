"""The runners, the one list of them. Each is ``runners/<name>.py`` with ``main(argv)``;
what goes over every runner (reproduce.py, a launcher's jobs, the GPU check and the
benchmarks, their tests) reads this list, and ``benchmarks.arm_steps.BUILDERS`` has an
entry for each (its test checks)."""
import importlib
from types import ModuleType

RUNNERS = ("cswm", "sort_of_clevr", "clutrr", "circles")  # the main job first


def runner_module(name: str) -> ModuleType:
    """``runners/<name>.py``, imported; KeyError for a name that is not a runner."""
    if name not in RUNNERS:
        raise KeyError(f"no runner {name!r} (runners: {', '.join(RUNNERS)})")
    return importlib.import_module(f"runners.{name}")
