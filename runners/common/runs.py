"""Run every (seed, arm) of an experiment that is not finished yet, saving each at once."""
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from tqdm import tqdm

from runners.common.results import ResultStore
from runners.common.seeding import seed_everything


@dataclass(frozen=True)
class Arm:
    """One arm of an experiment: the settings that define its runs and the function that
    trains and evaluates one seed (called after seeding) and returns its metrics."""

    settings: dict
    run: Callable[[int], dict]


def run_arms(store: ResultStore, arms: Mapping[str, Arm], seeds: range, threads: int | None) -> dict[str, list[dict]]:
    """Run the missing (seed, arm) pairs seed by seed, so that an interrupted experiment
    still has comparable arms; returns arm -> metrics per finished seed, in seed order."""
    pending = [(seed, name) for seed in seeds for name, arm in arms.items()
               if store.get(name, arm.settings, seed) is None]
    done = len(seeds) * len(arms) - len(pending)
    if done:
        print(f"reusing {done} finished run(s) from {store.path}")
    for seed, name in tqdm(pending, desc="runs", unit="run", disable=not pending):
        arm = arms[name]
        tqdm.write(f"{name}, seed {seed}")
        seed_everything(seed, threads)
        start = time.perf_counter()
        metrics = arm.run(seed)
        store.put(name, arm.settings, seed, metrics, time.perf_counter() - start)
    return {name: store.finished(name, arm.settings, seeds) for name, arm in arms.items()}
