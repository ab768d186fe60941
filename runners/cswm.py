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
from runners.common.compare import compare
from runners.common.curves import curve_table, save_curves, save_steps_curves
from runners.common.checkpoints import RunCheckpoint
from runners.common.cli import ArgumentParser, add_common_arguments, main_guard, parse, positive_int
from runners.common.errors import UsageError
from runners.common.invocation import BASELINE, Invocation, arm_label, arm_labels, print_plan, refiner_identity, resolve
from runners.common.paper import paper_differences, paper_table, reference_note, reference_rows
from runners.common.results import ResultStore, settings_key
from runners.common.runs import Arm, run_arms
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


def arm_settings(settings: Settings, invocation: Invocation, upstream_commit: str) -> dict[str, dict]:
    """arm -> the settings that identify its runs in results.json."""
    baseline = {"env": settings.env, "train_episodes": settings.train_episodes,
                "eval_episodes": settings.eval_episodes, "upstream": upstream_commit, **asdict(settings.train)}
    arms = {BASELINE: baseline}
    for kind, refiner in invocation.refiners.items():
        arms[kind] = {**baseline, "refiner": refiner_identity(refiner)}
    return arms


def experiment(args: argparse.Namespace, invocation: Invocation) -> tuple[Settings, dict[str, dict]]:
    """A command's settings (its preset, with --env, --k and --epochs over it) and the
    identity of each of its arms (``arm_settings``)."""
    overrides = {"env": args.env, "num_objects": args.k, "epochs": args.epochs}
    settings = frozen(Settings, with_overrides(invocation.config, overrides),
                      f"{invocation.config_path} preset {invocation.preset}")
    return settings, arm_settings(settings, invocation, vendor.checkout("c-swm").commit)


def describe(settings: Settings, invocation: Invocation) -> str:
    line = (f"C-SWM on {GAME_NAMES[settings.env]}, K={settings.num_objects}, preset {invocation.preset}: "
            f"{settings.train_episodes} training episodes, {settings.epochs} epochs, batch {settings.batch_size}, "
            f"lr {settings.learning_rate:g}, encoder {settings.encoder}, embedding {settings.embedding_dim}, "
            f"hidden {settings.hidden_dim}; device {invocation.device}")
    for kind, refiner in invocation.refiners.items():
        line += f"; {arm_label(kind)}: {refiner.summary()}"
    return line


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    invocation = resolve(RUNNER, args, refiner_defaults=tuned_refiner(args.env, args.k))
    settings, arms = experiment(args, invocation)
    upstream = vendor.checkout("c-swm")
    folder = args.out / settings.folder_name
    if args.dry_run:
        print_plan(invocation, ResultStore(folder, create=False), arms, settings)
        return
    if args.compare:
        compare(folder, arms[BASELINE], [*RANKING_METRICS, SPREAD_METRIC], STEPS_CURVE_METRICS,
                plot_title(settings, invocation))
        return
    store = ResultStore(folder)
    print(describe(settings, invocation))

    def checkpoint_of(name: str, seed: int) -> Path:
        return store.directory / "checkpoints" / f"{name}-{settings_key(arms[name])}-seed{seed}"

    uncurved = [(name, seed) for name in invocation.refiners for seed in invocation.seeds
                if "steps_curve" not in (store.get(name, arms[name], seed) or {"steps_curve": "not run yet"})
                and (checkpoint_of(name, seed) / "model.pt").exists()]
    datasets = {}
    if uncurved or any(store.get(name, arm, seed) is None for name, arm in arms.items() for seed in invocation.seeds):
        datasets = {split: cswm_data.ensure_dataset(upstream, args.data_dir, settings.env, split, episodes)
                    for split, episodes in (("train", settings.train_episodes), ("eval", settings.eval_episodes))}
    for name, seed in uncurved:  # runs saved before step-count curves were kept: measured on their checkpoint
        print(f"{name}, seed {seed}: measuring its step-count curve on its saved model")
        store.amend(name, arms[name], seed, {"steps_curve": refiner_steps_curve(
            upstream, datasets["eval"], checkpoint_of(name, seed), replace(invocation.refiners[name], seed=seed),
            invocation.device, args.verbose)})

    def arm(name: str) -> Arm:
        def run(seed: int, resume: RunCheckpoint) -> dict:
            checkpoint = checkpoint_of(name, seed)
            refiner = invocation.refiners.get(name)
            return train_and_evaluate(upstream, datasets["train"], datasets["eval"], checkpoint, settings.train, seed,
                                      None if refiner is None else replace(refiner, seed=seed),
                                      invocation.device, echo=args.verbose, eval_every=settings.eval_every,
                                      resume=resume)
        return Arm(arms[name], run)

    print(f"each run's train.py and eval.py output: {store.directory / 'checkpoints'}/<arm>-<settings>-seed<N>/"
          f"log.txt and eval.txt" + ("" if args.verbose else " (--verbose shows it here)"))

    runs = run_arms(store, {name: arm(name) for name in arms}, invocation)
    if runs is None:  # this process was one job of a launcher: the launching command reports
        return
    labelled = {arm_label(name): arm_runs for name, arm_runs in runs.items()}
    curves = save_curves(store, arms, arm_labels(list(arms)), invocation.seeds,
                         plot_title(settings, invocation) + curve_note(settings), CURVE_METRICS)
    reference = paper_reference(settings, arms, list(invocation.refiners))
    report = (f"{describe(settings, invocation)}\n\n{tables(labelled, settings.eval_episodes, *reference)}\n\n"
              f"{what_this_is(settings, invocation)}\n\n## Learning curve{curve_note(settings)}\n\n"
              f"{curve_table(curves, CURVE_TABLE_METRICS)}\n")
    report += save_steps_curves(labelled, store.directory / "steps_curve.png", plot_title(settings, invocation),
                                STEPS_CURVE_METRICS)
    print(f"\n{report}")
    store.write_markdown(report)
    samples = max(run["samples"] for arm_runs in runs.values() for run in arm_runs)
    plot_ranking(labelled, store.directory / "results.png", plot_title(settings, invocation), chance_levels(samples))
    print(f"saved {store.directory / 'results.md'}, {store.directory / 'results.png'}, "
          f"{store.directory / 'curves.png'}, {store.directory / 'tensorboard'} and {store.path}")


def what_this_is(settings: Settings, invocation: Invocation) -> str:
    """What the report is and is not: the paper's settings; the smoke preset's look at the
    path; or (laptop, any other) a comparison at a smaller scale than the paper's."""
    if invocation.preset == "paper":
        return ("Preset paper: appendix E's settings (the paper's Table 3 reports 10 trials: compare with --seeds 10).")
    scale = (f"Preset {invocation.preset}: {settings.epochs} epochs at batch {settings.batch_size} instead of the paper's "
             "500 epochs at batch 1024. ")
    paper = ("The paper's numbers are those of Table 3 (NeurIPS version, 10 trials) and appendix E (5 trials); "
             "run --preset paper on a GPU to compare.")
    if invocation.preset == "smoke":
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


def paper_reference(settings: Settings, arms: dict[str, dict], refiner_kinds: list[str]) -> tuple[dict, str]:
    """The reference rows of Table 3 (NeurIPS version) for this game and K, or none, and
    the line that says which (or which settings differ from the paper preset's)."""
    try:
        published = paper_table(RUNNER, "table_3", "games", settings.env, settings.num_objects)
    except KeyError:
        return {}, f"Paper: Table 3 has no {GAME_NAMES[settings.env]} with K={settings.num_objects}."
    flags = ["--env", settings.env, "--k", str(settings.num_objects), *(f"--{kind}" for kind in refiner_kinds)]
    differing = paper_differences(RUNNER, parse_args, flags, lambda args, paper: experiment(args, paper)[1], arms,
                                  refiner_defaults=tuned_refiner(settings.env, settings.num_objects))
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
