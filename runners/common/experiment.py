"""The flow of every runner's command, written once (``main``), and what a runner declares
to take part in it (``Experiment``).

    parse -> resolve -> plan -> --dry-run | --compare | data -> arms -> run_arms -> report

A runner's script is its ``Experiment`` and ``main = EXPERIMENT.main``: parsing its flags,
its settings, its data, how it builds and runs one (arm, seed), and its tables and figures
are its own; the order of the steps, --dry-run, --compare, the results store, the
launcher's jobs (``runs.run_arms``: None in a job's own process, whose launching command
reports) and the comparison with the paper preset's settings are this module's.
"""
import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from runners.common.compare import compare
from runners.common.invocation import BASELINE, Invocation, print_plan, resolve
from runners.common.paper import differences
from runners.common.results import ResultStore
from runners.common.runs import Arm, run_arms
from runners.common.stats import Metric


@dataclass(frozen=True)
class Plan:
    """What one command runs, before anything runs.

    settings: the runner's frozen settings (the preset with the flags over it);
    identities: arm name -> the settings that identify its runs in results.json;
    folder: the results folder's name under --out (the settings all arms share);
    arms: arm name -> what the runner builds that arm from (its own kind of value, e.g.
        circles' models or CLUTRR's run settings; empty where the identities say it all).
    """

    settings: Any
    identities: dict[str, dict]
    folder: str
    arms: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Command:
    """One command on its way: its arguments, invocation and plan, its results store, its
    data (what the runner's ``data`` returned) and when it started (``time.perf_counter``)."""

    args: argparse.Namespace
    invocation: Invocation
    plan: Plan
    store: ResultStore
    data: Any
    started: float


class Experiment:
    """One runner's own parts of the flow (``main``).

    name: the runner (``runners/<name>.py``, ``configs/<name>.yaml``);
    model: the upstream model's name in tables ("RN"; None: "baseline");
    metrics, steps_metrics: what --compare tabulates and draws per refiner step count;
    per_refiner: identity settings a refiner arm may have of its own besides its refiner
        (CLUTRR's l2), which --compare does not require to be the baseline's;
    table_flags: the flags that choose its main table, where it needs some (C-SWM's game
        and K): what a command over every runner (the GPU check, the tests) passes it.

    A runner implements ``parse_args``, ``plan``, ``arms`` and ``report``, and may
    override ``resolve`` (what its flags add to the invocation), ``title``, ``data`` and
    ``paper_flags`` (the flags that choose the paper's table for these arms).
    """

    name: str
    model: str | None = None
    metrics: Sequence[Metric] = ()
    steps_metrics: Sequence[Metric] = ()
    per_refiner: Sequence[str] = ()
    table_flags: Sequence[str] = ()

    def parse_args(self, argv: list[str] | None) -> argparse.Namespace:
        """The command's arguments (``cli.add_common_arguments`` and the runner's own)."""
        raise NotImplementedError

    def resolve(self, args: argparse.Namespace) -> Invocation:
        """The command's invocation (``invocation.resolve``)."""
        return resolve(self.name, args)

    def plan(self, args: argparse.Namespace, invocation: Invocation) -> Plan:
        """The command's settings, arms and results folder; touches nothing."""
        raise NotImplementedError

    def title(self, plan: Plan, invocation: Invocation) -> str:
        """The title of its figures."""
        return f"{self.name}, preset {invocation.preset}"

    def data(self, args: argparse.Namespace, invocation: Invocation, plan: Plan, store: ResultStore) -> Any:
        """The data the runs need, made or loaded (and what the report needs of it)."""
        return None

    def arms(self, command: Command) -> dict[str, Arm]:
        """Each arm's run of one seed."""
        raise NotImplementedError

    def paper_flags(self, args: argparse.Namespace, invocation: Invocation) -> list[str] | None:
        """The flags of the same arms under the paper preset (None: no paper table to
        compare with)."""
        return [f"--{kind}" for kind in invocation.refiners]

    def report(self, command: Command, runs: dict[str, list[dict]], differing: list[str]) -> None:
        """Tables, results.md and figures of the finished ``runs`` (arm -> metrics per
        seed); ``differing``: the settings in which they differ from the paper preset's."""
        raise NotImplementedError

    def paper_differences(self, args: argparse.Namespace, invocation: Invocation, plan: Plan) -> list[str]:
        """The settings of ``plan``'s arms that differ from the paper preset's, each as
        "name value (paper: value)"; none where ``paper_flags`` is None."""
        flags = self.paper_flags(args, invocation)
        if flags is None:
            return []
        paper_args, paper = self.paper_invocation(flags)
        return differences(plan.identities, self.plan(paper_args, paper).identities)

    def paper_invocation(self, flags: list[str]) -> tuple[argparse.Namespace, Invocation]:
        """The arguments and invocation of the paper preset of configs/<name>.yaml with
        ``flags``, resolved as this runner resolves any command."""
        args = self.parse_args(["--preset", "paper", "--device", "cpu", *flags])
        return args, self.resolve(args)

    def main(self, argv: list[str] | None = None) -> None:
        """The command: parse, resolve and plan; then --dry-run prints the plan, --compare
        lays the refiner arms in the results folder beside the baseline, and otherwise
        every (arm, seed) run not yet in results.json runs and the report is written."""
        started = time.perf_counter()
        args = self.parse_args(argv)
        invocation = self.resolve(args)
        plan = self.plan(args, invocation)
        folder = Path(args.out) / plan.folder
        if args.dry_run:
            print_plan(invocation, ResultStore(folder, create=False), plan.identities, plan.settings)
            return
        if args.compare:
            compare(folder, plan.identities[BASELINE], self.metrics, self.steps_metrics, self.title(plan, invocation),
                    self.model, per_refiner=self.per_refiner)
            return
        store = ResultStore(folder)
        command = Command(args, invocation, plan, store, self.data(args, invocation, plan, store), started)
        runs = run_arms(store, self.arms(command), invocation)
        if runs is None:  # this process was one job of a launcher: the launching command reports
            return
        self.report(command, runs, self.paper_differences(args, invocation, plan))
