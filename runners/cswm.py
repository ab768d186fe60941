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
from dataclasses import asdict, fields

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adapters.cswm import SRNSettings  # noqa: E402
from patches import vendor  # noqa: E402
from runners import cswm_data  # noqa: E402
from runners.common import presets  # noqa: E402
from runners.common.cli import (  # noqa: E402
    ArgumentParser, UsageError, add_common_arguments, main_guard, non_negative_int, positive_float, positive_int,
)
from runners.common.experiment import Arm, run_arms  # noqa: E402
from runners.common.results import ResultStore, settings_key  # noqa: E402
from runners.common.stats import Metric, comparison_table, mean_std  # noqa: E402
from runners.cswm_upstream import PREDICTION_STEPS, TrainSettings, train_and_evaluate  # noqa: E402

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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    preset = presets.resolve_preset(args.preset)
    config = presets.load_preset(RUNNER, preset, CONFIG_DIR)
    if config["eval_episodes"] < cswm_data.MIN_EVAL_EPISODES:
        raise UsageError(f"the evaluation set needs at least {cswm_data.MIN_EVAL_EPISODES} episodes "
                         f"(eval.py drops partial batches of 100), the preset has {config['eval_episodes']}")
    seeds = range(args.seeds or config["seeds"])
    threads = args.threads or config.get("threads")
    train_settings = TrainSettings(
        num_objects=args.k, epochs=args.epochs or config["epochs"],
        **{f.name: config[f.name] for f in fields(TrainSettings) if f.name not in ("num_objects", "epochs")})
    upstream = vendor.checkout("c-swm")
    baseline_settings = {"env": args.env, "train_episodes": config["train_episodes"],
                         "eval_episodes": config["eval_episodes"], "upstream": upstream.commit, **asdict(train_settings)}
    srn = None
    if args.srn:
        steps = config["steps"] if args.steps is None else args.steps
        inner_lr = args.inner_lr or tuned_inner_lr(config, args.env, args.k)
        srn = {"srn_steps": steps, "inner_lr": inner_lr}

    name = (f"{args.env}-k{args.k}-{config['train_episodes']}ep-{train_settings.epochs}epochs"
            f"-batch{train_settings.batch_size}-lr{train_settings.learning_rate:g}")
    store = ResultStore(args.out / name)
    arm_settings = {BASELINE: baseline_settings}
    if srn:
        arm_settings[SRN] = {**baseline_settings, **srn}
    datasets = {}
    if any(store.get(arm_name, settings, seed) is None for arm_name, settings in arm_settings.items() for seed in seeds):
        datasets = {split: cswm_data.ensure_dataset(upstream, args.data_dir, args.env, split, config[f"{split}_episodes"])
                    for split in ("train", "eval")}

    def arm(arm_name: str) -> Arm:
        settings = arm_settings[arm_name]

        def run(seed: int) -> dict:
            checkpoint = store.directory / "checkpoints" / f"{arm_name}-{settings_key(settings)}-seed{seed}"
            srn_of_seed = SRNSettings(srn["srn_steps"], srn["inner_lr"], seed=seed) if arm_name == SRN else None
            return train_and_evaluate(upstream, datasets["train"], datasets["eval"], checkpoint, train_settings,
                                      seed, srn_of_seed)
        return Arm(settings, run)

    arms = {arm_name: arm(arm_name) for arm_name in arm_settings}
    header = describe(args, preset, config, train_settings, srn)
    print(header)
    runs = run_arms(store, arms, seeds, threads)
    report = f"{header}\n\n{tables(runs, config['eval_episodes'])}\n"
    print(f"\n{report}")
    store.write_markdown(report)
    plot(runs, store.directory / "results.png", header.splitlines()[0])
    print(f"saved {store.directory / 'results.md'}, {store.directory / 'results.png'} and {store.path}")


def describe(args, preset: str, config: dict, train: TrainSettings, srn: dict | None) -> str:
    """What is being compared, in two lines."""
    line = (f"C-SWM on {GAME_NAMES[args.env]}, K={args.k}, preset {preset}: {config['train_episodes']} training "
            f"episodes, {train.epochs} epochs, batch {train.batch_size}, lr {train.learning_rate:g}, "
            f"encoder {train.encoder}, embedding {train.embedding_dim}, hidden {train.hidden_dim}")
    if srn:
        line += f"; SRN: r={srn['srn_steps']}, inner lr {srn['inner_lr']:g}"
    return line


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
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True)
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
    figure.suptitle(title, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main_guard(main)
