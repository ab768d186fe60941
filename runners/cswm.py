"""C-SWM world models with and without SRN on Atari Pong and Space Invaders (paper
section 3.2, Table 3; appendix E).

    python runners/cswm.py --env space --k 3 --srn

Generates (once, cached under --data-dir) the training and evaluation sets with the
upstream's data_gen/env.py, trains C-SWM with the upstream's train.py for every seed,
without SRN (the baseline arm) and, with --srn, with SRN (same data, same seeds), and
ranks predicted states with the upstream's eval.py at 1, 5 and 10 prediction steps. The
table has the layout of the paper's Table 3: hits at rank 1 (H@1) and mean reciprocal rank
(MRR) in %, mean ± std over seeds, and Welch's t-test p-value per column. Finished runs
are kept in results.json: a baseline trained by an earlier command is reused, and
``--compare`` lays every refiner variant that commands with the same --out trained
(``--srn``, ``--srn --backprop last``, ``--slot-attention``, ...) beside it in compare.md.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project from its root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import dataclasses
from dataclasses import asdict, dataclass, replace
from typing import Callable

from adapters.cswm import ADAPTER
from patches import vendor
from runners import cswm_data
from runners.common.curves import curve_table, save_curves, save_steps_curves
from runners.common.checkpoints import RunCheckpoint
from runners.common.cli import ArgumentParser, add_common_arguments, main_guard, parse, positive_int
from runners.common.errors import UsageError
from runners.common.experiment import Command, Experiment, Plan
from runners.common.invocation import BASELINE, Invocation, arm_label, arm_labels, refiner_identity, resolve
from runners.common.paper import paper_table, reference_note, reference_rows
from runners.common.results import ResultStore, settings_key
from runners.common.runs import Arm
from runners.common.settings import frozen, with_overrides
from declared.settings import Count
from runners.common.stats import Metric, comparison_table
from runners.cswm_plots import plot_ranking
from runners.cswm_train import PREDICTION_STEPS, TrainSettings, refiner_steps_curve, train_and_evaluate

RUNNER = "cswm"
GAME_NAMES = {"pong": "Pong", "space": "Space Invaders"}
MAX_K = 20  # the transition model has K * (K - 1) edges: K = 1000 failed on a 65 GB allocation
RANKING_METRICS = [
    Metric(f"{key}_{steps}", f"{steps} step{'s' if steps > 1 else ''} {label}", scale=100, digits=1)
    for steps in PREDICTION_STEPS
    for key, label in (("h1", "H@1"), ("mrr", "MRR"))
]
SPREAD_METRIC = Metric("spread", "state spread", digits=3)
CURVE_METRICS = [Metric("train_loss", "train loss (train.py's average)", digits=5),
                 *(metric for metric in RANKING_METRICS if metric.key.startswith("h1_")),
                 *(metric for metric in RANKING_METRICS if metric.key.startswith("mrr_"))]
CURVE_TABLE_METRICS = CURVE_METRICS[:4]  # the loss and H@1 at 1, 5 and 10 steps
STEPS_CURVE_METRICS = [metric for metric in RANKING_METRICS if metric.key in ("h1_1", "mrr_1")]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog=f"runners/{RUNNER}.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", choices=sorted(GAME_NAMES), required=True, help="pong or space (Space Invaders)")
    parser.add_argument("--k", type=positive_int, required=True, help="number of object slots K")
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default: the preset's)")
    parser.add_argument("--verbose", action="store_true",
                        help="stream train.py's and eval.py's output to the console (it is always in each run's "
                             "log.txt and eval.txt)")
    add_common_arguments(parser, RUNNER, uses_edges=ADAPTER.uses_edges)
    return parse(parser, argv)


@dataclass(frozen=True)
class Settings(TrainSettings):
    """What one command compares besides the refiner: train.py's settings (``num_objects``
    is --k), the game, the datasets, ``tuned_inner_lr``: appendix E's inner learning
    rates, per game (and per K for Pong), the SRN's default, and ``eval_every``: rank the
    evaluation set every that many epochs for the learning curve (None: only the train
    loss per epoch; it does not change the training, and is not part of a run's identity)."""

    env: str
    train_episodes: Count
    eval_episodes: Count
    tuned_inner_lr: dict
    eval_every: Count | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.eval_every is not None and self.eval_every > self.epochs:
            raise ValueError(f"eval_every ({self.eval_every}) exceeds the {self.epochs} epochs: no evaluation "
                             "would run (null turns it off)")
        if not 1 <= self.num_objects <= MAX_K:
            raise ValueError(f"K (--k) must be in 1..{MAX_K}, got {self.num_objects}")
        if self.eval_episodes < cswm_data.MIN_EVAL_EPISODES:
            raise ValueError(f"the evaluation set needs at least {cswm_data.MIN_EVAL_EPISODES} episodes "
                             f"(eval.py drops partial batches of 100), got {self.eval_episodes}")

    @property
    def train(self) -> TrainSettings:
        """train.py's arguments."""
        return TrainSettings(**{field.name: getattr(self, field.name) for field in dataclasses.fields(TrainSettings)})

    @property
    def folder_name(self) -> str:
        """The results subfolder: the settings both arms share."""
        return (f"{self.env}-k{self.num_objects}-{self.train_episodes}ep-{self.epochs}epochs"
                f"-batch{self.batch_size}-lr{self.learning_rate:g}")


def tuned_inner_lr(table: dict, env: str, k: int) -> float:
    """Appendix E's inner learning rate: one per game, or per game and K."""
    value = table[env]
    if isinstance(value, dict):
        if k not in value:
            raise UsageError(f"appendix E tunes the inner learning rate for {env} only with K in {sorted(value)}: "
                             "pass --inner-lr")
        value = value[k]
    return float(value)


def tuned_refiner(env: str, k: int) -> Callable[[dict], dict]:
    """``resolve``'s refiner_defaults: appendix E's inner learning rate for the game and K
    (a preset's ``tuned_inner_lr``) where the preset leaves the SRN's null."""
    return lambda config: {"inner_lr": tuned_inner_lr(config["tuned_inner_lr"], env, k)}


def chance_levels(samples: int) -> tuple[float, float]:
    """H@1 and MRR of a random ranking of ``samples`` candidates (eval.py ranks each
    sample's true next state among the ``samples`` predictions)."""
    return 1 / samples, sum(1 / rank for rank in range(1, samples + 1)) / samples


def describe(settings: Settings, invocation: Invocation) -> str:
    line = (f"C-SWM on {GAME_NAMES[settings.env]}, K={settings.num_objects}, preset {invocation.preset}: "
            f"{settings.train_episodes} training episodes, {settings.epochs} epochs, batch {settings.batch_size}, "
            f"lr {settings.learning_rate:g}, encoder {settings.encoder}, embedding {settings.embedding_dim}, "
            f"hidden {settings.hidden_dim}; device {invocation.device}")
    for kind, refiner in invocation.refiners.items():
        line += f"; {arm_label(kind)}: {refiner.summary()}"
    return line


class CswmExperiment(Experiment):
    """Table 3: C-SWM with and without a refiner, trained and ranked by the upstream's scripts."""

    name = RUNNER
    metrics, steps_metrics = [*RANKING_METRICS, SPREAD_METRIC], STEPS_CURVE_METRICS
    table_flags = ("--env", "space", "--k", "3")  # the main job's table

    def parse_args(self, argv: list[str] | None) -> argparse.Namespace:
        return parse_args(argv)

    def resolve(self, args: argparse.Namespace) -> Invocation:
        return resolve(RUNNER, args, refiner_defaults=tuned_refiner(args.env, args.k))

    def plan(self, args: argparse.Namespace, invocation: Invocation) -> Plan:
        """The preset with --env, --k and --epochs over it; each arm is identified by the game,
        the datasets' sizes, the upstream's commit and train.py's arguments (a refiner arm's:
        its refiner's too)."""
        overrides = {"env": args.env, "num_objects": args.k, "epochs": args.epochs}
        settings = frozen(Settings, with_overrides(invocation.config, overrides),
                          f"{invocation.config_path} preset {invocation.preset}")
        baseline = {"env": settings.env, "train_episodes": settings.train_episodes,
                    "eval_episodes": settings.eval_episodes, "upstream": vendor.checkout("c-swm").commit,
                    **asdict(settings.train)}
        identities = {BASELINE: baseline, **{kind: {**baseline, "refiner": refiner_identity(refiner)}
                                             for kind, refiner in invocation.refiners.items()}}
        return Plan(settings, identities, settings.folder_name)

    def title(self, plan: Plan, invocation: Invocation) -> str:
        return plot_title(plan.settings, invocation)

    def data(self, args: argparse.Namespace, invocation: Invocation, plan: Plan, store: ResultStore) -> dict[str, Path]:
        """The training and evaluation sets (generated once, where a run is missing), after
        measuring the step-count curves that runs saved before curves were kept lack, on
        their saved models."""
        settings, identities = plan.settings, plan.identities
        print(describe(settings, invocation))
        upstream = vendor.checkout("c-swm")
        uncurved = [(name, seed) for name in invocation.refiners for seed in invocation.seeds
                    if "steps_curve" not in (store.get(name, identities[name], seed) or {"steps_curve": "not run yet"})
                    and (model_folder(store, name, identities[name], seed) / "model.pt").exists()]
        datasets = {}
        if uncurved or any(store.get(name, identity, seed) is None
                           for name, identity in identities.items() for seed in invocation.seeds):
            datasets = {split: cswm_data.ensure_dataset(upstream, args.data_dir, settings.env, split, episodes)
                        for split, episodes in (("train", settings.train_episodes), ("eval", settings.eval_episodes))}
        for name, seed in uncurved:
            print(f"{name}, seed {seed}: measuring its step-count curve on its saved model")
            store.amend(name, identities[name], seed, {"steps_curve": refiner_steps_curve(
                upstream, datasets["eval"], model_folder(store, name, identities[name], seed),
                replace(invocation.refiners[name], seed=seed), invocation.device, args.verbose)})
        return datasets

    def arms(self, command: Command) -> dict[str, Arm]:
        args, invocation, plan, store, datasets = (command.args, command.invocation, command.plan, command.store,
                                                   command.data)
        upstream = vendor.checkout("c-swm")

        def arm(name: str) -> Arm:
            def run(seed: int, resume: RunCheckpoint) -> dict:
                refiner = invocation.refiners.get(name)
                return train_and_evaluate(upstream, datasets["train"], datasets["eval"],
                                          model_folder(store, name, plan.identities[name], seed), plan.settings.train,
                                          seed, None if refiner is None else replace(refiner, seed=seed),
                                          invocation.device, echo=args.verbose, eval_every=plan.settings.eval_every,
                                          resume=resume)
            return Arm(plan.identities[name], run)

        print(f"each run's train.py and eval.py output: {store.directory / 'checkpoints'}/<arm>-<settings>-seed<N>/"
              f"log.txt and eval.txt" + ("" if args.verbose else " (--verbose shows it here)"))
        return {name: arm(name) for name in plan.identities}

    def paper_flags(self, args: argparse.Namespace, invocation: Invocation) -> list[str] | None:
        """None where Table 3 has no row for this game and K."""
        if paper_rows(args.env, args.k) is None:
            return None
        return ["--env", args.env, "--k", str(args.k), *super().paper_flags(args, invocation)]

    def report(self, command: Command, runs: dict[str, list[dict]], differing: list[str]) -> None:
        invocation, plan, store = command.invocation, command.plan, command.store
        settings, identities, title = plan.settings, plan.identities, self.title(plan, invocation)
        labelled = {arm_label(name): arm_runs for name, arm_runs in runs.items()}
        curves = save_curves(store, identities, arm_labels(list(identities)), invocation.seeds,
                             title + curve_note(settings), CURVE_METRICS)
        reference = paper_reference(settings, identities, differing)
        report = (f"{describe(settings, invocation)}\n\n{tables(labelled, settings.eval_episodes, *reference)}\n\n"
                  f"{what_this_is(settings, invocation)}\n\n## Learning curve{curve_note(settings)}\n\n"
                  f"{curve_table(curves, CURVE_TABLE_METRICS)}\n")
        report += save_steps_curves(labelled, store.directory / "steps_curve.png", title, STEPS_CURVE_METRICS)
        print(f"\n{report}")
        store.write_markdown(report)
        samples = max(run["samples"] for arm_runs in runs.values() for run in arm_runs)
        plot_ranking(labelled, store.directory / "results.png", title, chance_levels(samples))
        print(f"saved {store.directory / 'results.md'}, {store.directory / 'results.png'}, "
              f"{store.directory / 'curves.png'}, {store.directory / 'tensorboard'} and {store.path}")


EXPERIMENT = CswmExperiment()
main = EXPERIMENT.main


def model_folder(store: ResultStore, name: str, identity: dict, seed: int) -> Path:
    """Where train.py writes the run's model.pt, log.txt and eval.txt."""
    return store.directory / "checkpoints" / f"{name}-{settings_key(identity)}-seed{seed}"


def what_this_is(settings: Settings, invocation: Invocation) -> str:
    """What the report is and is not: the paper's settings; the smoke or tiny preset's look at
    the path; or (laptop, any other) a comparison at a smaller scale than the paper's."""
    if invocation.preset == "paper":
        return ("Preset paper: appendix E's settings (the paper's Table 3 reports 10 trials: compare with --seeds 10).")
    scale = (f"Preset {invocation.preset}: {settings.epochs} epochs at batch {settings.batch_size} instead of the paper's "
             "500 epochs at batch 1024. ")
    paper = ("The paper's numbers are those of Table 3 (NeurIPS version, 10 trials) and appendix E (5 trials); "
             "run --preset paper on a GPU to compare.")
    if invocation.preset in ("smoke", "tiny"):
        return (scale + "This shows that the whole path runs (data, training, ranking, both arms); a difference "
                "between the arms at this scale is not a result. " + paper)
    return (scale + "The p-values say whether the arms differ at this scale, not at the paper's. " + paper)


def curve_note(settings: Settings) -> str:
    """What the curves' ranking points are."""
    if settings.eval_every is None:
        return " (train loss per epoch; eval_every ranks the evaluation set along the way)"
    return f" (ranking of the evaluation set every {settings.eval_every} epochs, H@1 and MRR in %)"


def plot_title(settings: Settings, invocation: Invocation) -> str:
    return (f"C-SWM on {GAME_NAMES[settings.env]}, K={settings.num_objects}: {invocation.preset} preset, "
            f"{settings.epochs} epochs, {settings.train_episodes} training episodes")


def paper_rows(env: str, k: int):
    """Table 3's (NeurIPS version) rows for this game and K, or None."""
    try:
        return paper_table(RUNNER, "table_3", "games", env, k)
    except KeyError:
        return None


def paper_reference(settings: Settings, arms: dict[str, dict], differing: list[str]) -> tuple[dict, str]:
    """The reference rows of Table 3 (NeurIPS version) for this game and K, or none, and
    the line that says which (or which settings, ``differing``, are not the paper preset's)."""
    published = paper_rows(settings.env, settings.num_objects)
    if published is None:
        return {}, f"Paper: Table 3 has no {GAME_NAMES[settings.env]} with K={settings.num_objects}."
    return reference_rows(published, differing, arm_labels(list(arms))), reference_note(published, differing)


def tables(runs: dict[str, list[dict]], eval_episodes: int, paper: dict, paper_note: str) -> str:
    """Table 3's layout (``runs``: display label -> metrics per seed; ``paper``: reference
    rows by label, with ``paper_note`` under the table), the eval-set size with its chance
    levels, and the state spread."""
    samples = sorted({run["samples"] for arm_runs in runs.values() for run in arm_runs})
    chance = ", ".join(f"{n} ranked samples: chance H@1 {100 * h:.2f}, chance MRR {100 * m:.2f}"
                       for n, (h, m) in ((n, chance_levels(n)) for n in samples))
    reference = arm_label(BASELINE)
    return "\n".join([
        f"Evaluation set: {eval_episodes} episodes; {chance} (%).",
        "",
        "H@1 and MRR in %, mean ± std over seeds; p: Welch's t-test against the baseline.",
        "",
        comparison_table(runs, RANKING_METRICS, reference=reference, paper=paper),
        "",
        paper_note,
        "",
        "State spread: RMS distance of the evaluation states to their mean (0 = a collapsed encoder, "
        "which eval.py ranks first on every tie).",
        "",
        comparison_table(runs, [SPREAD_METRIC], reference=reference),
    ])


if __name__ == "__main__":
    main_guard(main)
