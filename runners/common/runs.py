"""Run every (seed, arm) of an experiment that is not finished yet, saving each at once."""
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from tqdm import tqdm

from runners.common.results import ResultStore
from runners.common.seeding import seed_everything


@dataclass(frozen=True)
class Arm:
    """One arm of an experiment: the settings that define its runs and the function that
    trains and evaluates one seed (called after seeding) and returns its metrics."""

    settings: dict
    run: Callable[[int], dict]


def seconds_left(pending: Sequence[str], costs: Mapping[str, list[float]]) -> float | None:
    """Expected seconds of the ``pending`` runs (their arm names), each arm at the mean of its
    measured ``costs`` (seconds of its finished runs); an arm not measured yet costs the mean
    of the measured ones. None while nothing is measured."""
    measured = {arm: sum(seconds) / len(seconds) for arm, seconds in costs.items() if seconds}
    if not measured:
        return None
    fallback = sum(measured.values()) / len(measured)
    return sum(measured.get(arm, fallback) for arm in pending)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA after the first run"
    minutes, second = divmod(int(round(seconds)), 60)
    hours, minute = divmod(minutes, 60)
    return f"ETA {hours}:{minute:02d}:{second:02d}" if hours else f"ETA {minute}:{second:02d}"


def run_arms(store: ResultStore, arms: Mapping[str, Arm], seeds: range, threads: int | None) -> dict[str, list[dict]]:
    """Run the missing (seed, arm) pairs seed by seed, so that an interrupted experiment
    still has comparable arms; returns arm -> metrics per finished seed, in seed order.
    The progress bar's ETA weighs each arm by its measured cost (runs of the same arm and
    settings in results.json, then this command's)."""
    pending = [(seed, name) for seed in seeds for name, arm in arms.items()
               if store.get(name, arm.settings, seed) is None]
    done = len(seeds) * len(arms) - len(pending)
    if done:
        print(f"reusing {done} finished run(s) from {store.path}")
    costs = {name: store.seconds(name, arm.settings) for name, arm in arms.items()}
    with tqdm(total=len(pending), desc="runs", unit="run", disable=not pending,
              bar_format="{desc}: {n}/{total} |{bar}| {elapsed} elapsed{postfix}") as bar:
        for index, (seed, name) in enumerate(pending):
            arm = arms[name]
            bar.set_postfix_str(f"{format_eta(seconds_left([n for _, n in pending[index:]], costs))}; "
                                f"now {name}, seed {seed}")
            seed_everything(seed, threads)
            start = time.perf_counter()
            metrics = arm.run(seed)
            seconds = time.perf_counter() - start
            store.put(name, arm.settings, seed, metrics, seconds)
            costs[name].append(seconds)
            bar.update()
    return {name: store.finished(name, arm.settings, seeds) for name, arm in arms.items()}
