"""C-SWM world models with and without SRN on Atari Pong and Space Invaders (paper
section 3.2, Table 3; appendix E).

    python runners/cswm.py --env space --k 3 --srn

Generates (once, cached under --data-dir) the training and evaluation sets with the
upstream's data_gen/env.py, trains C-SWM with the upstream's train.py for every seed,
without SRN (the baseline arm) and, with --srn, with SRN (same data, same seeds), and
ranks predicted states with the upstream's eval.py at 1, 5 and 10 prediction steps. The
table has the layout of the paper's Table 3: hits at rank 1 (H@1) and mean reciprocal rank
(MRR) in %, mean ± std over seeds, and Welch's t-test p-value per column. Finished runs
are kept in results.json: a baseline trained by an earlier command is reused.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project from its root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import textwrap
from dataclasses import asdict, dataclass, fields

from matplotlib.figure import Figure

from adapters.cswm import SRNSettings
from patches import vendor
from runners import cswm_data
from runners.common import presets
from runners.common.cli import (
    ArgumentParser, UsageError, add_common_arguments, main_guard, non_negative_int, positive_float, positive_int,
)
from runners.common.experiment import Arm, run_arms
from runners.common.results import ResultStore, settings_key
from runners.common.stats import Metric, comparison_table, mean_std
from runners.cswm_upstream import PREDICTION_STEPS, TrainSettings, train_and_evaluate

RUNNER = "cswm"
CONFIG_DIR = presets.CONFIG_DIR
GAME_NAMES = {"pong": "Pong", "space": "Space Invaders"}
BASELINE, SRN = "baseline", "SRN"
RANKING_METRICS = [
    Metric(f"{key}_{steps}", f"{steps} step{'s' if steps > 1 else ''} {label}", scale=100, digits=1)
    for steps in PREDICTION_STEPS
    for key, label in (("h1", "H@1"), ("mrr", "MRR"))
]
SPREAD_METRIC = Metric("spread", "state spread", digits=3)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog="runners/cswm.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", choices=sorted(GAME_NAMES), required=True, help="pong or space (Space Invaders)")
    parser.add_argument("--k", type=positive_int, required=True, help="number of object slots K")
    parser.add_argument("--srn", action="store_true", help="also train and evaluate C-SWM with SRN")
    parser.add_argument("--steps", type=non_negative_int, default=None, help="SRN inner steps r (default: the preset's)")
    parser.add_argument("--inner-lr", type=positive_float, default=None,
                        help="SRN inner learning rate (default: appendix E's for the game and K)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default: the preset's)")
    add_common_arguments(parser, f"results/{RUNNER}")
    args = parser.parse_args(argv)
    if not args.srn and (args.steps is not None or args.inner_lr is not None):
        raise UsageError("--steps and --inner-lr set the SRN arm: add --srn")
    return args


def tuned_inner_lr(config: dict, env: str, k: int) -> float:
    """Appendix E's inner learning rate: one per game, or per game and K."""
    value = config["inner_lr"][env]
    if isinstance(value, dict):
        if k not in value:
            raise UsageError(f"appendix E tunes the inner learning rate for {env} only with K in {sorted(value)}: "
                             "pass --inner-lr")
        value = value[k]
    return float(value)


def chance_levels(samples: int) -> tuple[float, float]:
    """H@1 and MRR of a random ranking of ``samples`` candidates (eval.py ranks each
    sample's true next state among the ``samples`` predictions)."""
    return 1 / samples, sum(1 / rank for rank in range(1, samples + 1)) / samples


@dataclass(frozen=True)
class Experiment:
    """What one command compares: the game, K, the datasets, train.py's settings and, with
    --srn, the SRN's (srn_steps None: the baseline arm only)."""

    env: str
    preset: str
    train_episodes: int
    eval_episodes: int
    train: TrainSettings
    srn_steps: int | None = None
    inner_lr: float | None = None

    @classmethod
    def from_arguments(cls, args: argparse.Namespace, preset: str, config: dict) -> "Experiment":
        if config["eval_episodes"] < cswm_data.MIN_EVAL_EPISODES:
            raise UsageError(f"the evaluation set needs at least {cswm_data.MIN_EVAL_EPISODES} episodes "
                             f"(eval.py drops partial batches of 100), the preset has {config['eval_episodes']}")
        train = TrainSettings(
            num_objects=args.k, epochs=args.epochs or config["epochs"],
            **{f.name: config[f.name] for f in fields(TrainSettings) if f.name not in ("num_objects", "epochs")})
        srn = {}
        if args.srn:
            srn = {"srn_steps": config["steps"] if args.steps is None else args.steps,
                   "inner_lr": args.inner_lr or tuned_inner_lr(config, args.env, args.k)}
        return cls(args.env, preset, config["train_episodes"], config["eval_episodes"], train, **srn)

    @property
    def folder_name(self) -> str:
        """The results subfolder: the settings both arms share."""
        return (f"{self.env}-k{self.train.num_objects}-{self.train_episodes}ep-{self.train.epochs}epochs"
                f"-batch{self.train.batch_size}-lr{self.train.learning_rate:g}")

    def arm_settings(self, upstream_commit: str) -> dict[str, dict]:
        """arm -> the settings that identify its runs in results.json."""
        baseline = {"env": self.env, "train_episodes": self.train_episodes, "eval_episodes": self.eval_episodes,
                    "upstream": upstream_commit, **asdict(self.train)}
        if self.srn_steps is None:
            return {BASELINE: baseline}
        return {BASELINE: baseline, SRN: {**baseline, "srn_steps": self.srn_steps, "inner_lr": self.inner_lr}}

    def srn_settings(self, arm_name: str, seed: int) -> SRNSettings | None:
        return SRNSettings(self.srn_steps, self.inner_lr, seed=seed) if arm_name == SRN else None

    def describe(self) -> str:
        train = self.train
        line = (f"C-SWM on {GAME_NAMES[self.env]}, K={train.num_objects}, preset {self.preset}: "
                f"{self.train_episodes} training episodes, {train.epochs} epochs, batch {train.batch_size}, "
                f"lr {train.learning_rate:g}, encoder {train.encoder}, embedding {train.embedding_dim}, "
                f"hidden {train.hidden_dim}")
        if self.srn_steps is not None:
            line += f"; SRN: r={self.srn_steps}, inner lr {self.inner_lr:g}"
        return line


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    preset = presets.resolve_preset(args.preset)
    config = presets.load_preset(RUNNER, preset, CONFIG_DIR)
    experiment = Experiment.from_arguments(args, preset, config)
    seeds = range(args.seeds or config["seeds"])
    upstream = vendor.checkout("c-swm")
    store = ResultStore(args.out / experiment.folder_name)
    settings = experiment.arm_settings(upstream.commit)
    print(experiment.describe())
    datasets = {}
    if any(store.get(arm_name, arm, seed) is None for arm_name, arm in settings.items() for seed in seeds):
        datasets = {split: cswm_data.ensure_dataset(upstream, args.data_dir, experiment.env, split, episodes)
                    for split, episodes in (("train", experiment.train_episodes), ("eval", experiment.eval_episodes))}

    def arm(arm_name: str) -> Arm:
        def run(seed: int) -> dict:
            checkpoint = store.directory / "checkpoints" / f"{arm_name}-{settings_key(settings[arm_name])}-seed{seed}"
            return train_and_evaluate(upstream, datasets["train"], datasets["eval"], checkpoint, experiment.train,
                                      seed, experiment.srn_settings(arm_name, seed))
        return Arm(settings[arm_name], run)

    runs = run_arms(store, {arm_name: arm(arm_name) for arm_name in settings}, seeds, args.threads or config.get("threads"))
    report = f"{experiment.describe()}\n\n{tables(runs, experiment.eval_episodes)}\n"
    print(f"\n{report}")
    store.write_markdown(report)
    plot(runs, store.directory / "results.png", experiment.describe())
    print(f"saved {store.directory / 'results.md'}, {store.directory / 'results.png'} and {store.path}")


def tables(runs: dict[str, list[dict]], eval_episodes: int) -> str:
    """Table 3's layout, the eval-set size with its chance levels, and the state spread."""
    samples = sorted({run["samples"] for arm_runs in runs.values() for run in arm_runs})
    chance = ", ".join(f"{n} ranked samples: chance H@1 {100 * h:.2f}, chance MRR {100 * m:.2f}"
                       for n, (h, m) in ((n, chance_levels(n)) for n in samples))
    return "\n".join([
        f"Evaluation set: {eval_episodes} episodes; {chance} (%).",
        "",
        "H@1 and MRR in %, mean ± std over seeds; p: Welch's t-test against the baseline.",
        "",
        comparison_table(runs, RANKING_METRICS, reference=BASELINE),
        "",
        "State spread: RMS distance of the evaluation states to their mean (0 = a collapsed encoder, "
        "which eval.py ranks first on every tie).",
        "",
        comparison_table(runs, [SPREAD_METRIC], reference=BASELINE),
    ])


def plot(runs: dict[str, list[dict]], path: Path, title: str) -> None:
    """H@1 and MRR against the number of prediction steps, mean ± std per arm."""
    figure = Figure(figsize=(9, 3.6))
    axes = figure.subplots(1, 2, sharex=True)
    for axis, (key, label) in zip(axes, (("h1", "H@1 (%)"), ("mrr", "MRR (%)"))):
        for arm_name, arm_runs in runs.items():
            if not arm_runs:
                continue
            stats = [mean_std([100 * run[f"{key}_{steps}"] for run in arm_runs]) for steps in PREDICTION_STEPS]
            axis.errorbar(PREDICTION_STEPS, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o",
                          capsize=3, label=f"{arm_name} (n={len(arm_runs)})")
        axis.set(xlabel="prediction steps", ylabel=label, xticks=PREDICTION_STEPS)
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(textwrap.fill(title, 130), fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main_guard(main)
