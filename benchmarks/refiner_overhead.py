"""What a refiner costs: one training step of the baseline and of each refiner arm of every
runner, interleaved in one run, and the refiner/baseline ratio beside the paper's
(appendix G: 2-3x for Sort-of-CLEVR and C-SWM, +10% per epoch for CLUTRR and circles),
with the ratio of FLOPs per step beside it (the floor of the time ratio at the same maths),
the kernel ops each step launches and its host synchronisations (the CPU-measurable proxy
for what a step costs a GPU besides its FLOPs), the kernel ops one more inner step adds to
a refiner arm (its step count r + 1 against r, refiners.schedule.fixed_steps), and each
step's peak memory (benchmarks.step_costs). ``--kinds`` adds the refiner kinds a
preset does not offer (Slot Attention); ``--variants`` adds each refiner arm again with
backprop through the last step only (iDSPN's approximate implicit differentiation), at
0 steps (where a schedule ending at 0 ends) and with the inner gradient by autograd (the
reference implementation, whose outer backward is a double backward).

Each arm is built as its runner builds it, with a preset's settings (default: paper), and
trained on one batch of real data from the project's own generators (the CLUTRR zip for
CLUTRR): runners/<name>_steps.py build them (the upstream RN(args).train_ for Sort-of-CLEVR,
the circles autoencoder's step, c-swm's ContrastiveSWM.contrastive_loss and Adam as
train.py steps them on Space Invaders with K=3, clutrr-baselines' Trainer.batchLoss and its
optimisers as run_experiment steps them). Steps of all arms of a runner alternate
(benchmarks.timing.alternating_medians), so every arm sees the same machine.

    python benchmarks/refiner_overhead.py [--preset paper|smoke|laptop] [--device auto|cpu|cuda|cuda:N]
        [--repeats 5] [--threads N] [--only circles sort_of_clevr cswm clutrr]
        [--kinds srn grn slot-attention] [--variants last "0 steps" autograd]
        [--clutrr-data data_db9b8f04.zip] [--data-dir data/]
"""
import argparse
import sys
import warnings
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):  # run as a script: import the project from its root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

from benchmarks.step_costs import step_flops, step_kernel_ops, step_peak_memory  # noqa: E402
from benchmarks.timing import alternating_medians  # noqa: E402
from runners import clutrr_data  # noqa: E402
from runners.common.cli import DATA_DIR, main_guard  # noqa: E402
from runners.common.device import resolve_device, use_device  # noqa: E402
from refiners.registry import KINDS  # noqa: E402
from refiners.schedule import StepCounter, fixed_steps  # noqa: E402
from runners.common.invocation import BASELINE  # noqa: E402
from runners.common.arm_steps import ArmSteps  # noqa: E402
from runners.registry import RUNNERS, arm_builder  # noqa: E402

PAPER_OVERHEAD = {"sort_of_clevr": "2-3x", "cswm": "2-3x", "clutrr": "+10% per epoch", "circles": "+10% per epoch"}


def synchronised(step: Callable[[], object], device: torch.device) -> Callable[[], None]:
    """``step``, waiting for the GPU to finish it."""
    def run():
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return run


VARIANTS = {  # --variants: the same refiner computed otherwise, (its flags, the kinds it applies to)
    "last": (["--backprop", "last"], lambda kind: "backprop" in KINDS[kind].setting_names()),
    "0 steps": (["--steps", "0"], lambda kind: True),  # where a schedule ending at 0 steps ends
    # the reference inner gradient (autograd.grad with create_graph, a double backward) against the first-order one
    "autograd": (["--gradient", "autograd"], lambda kind: "gradient" in KINDS[kind].setting_names()),
}


def runner_arms(runner: str, args: argparse.Namespace, device: torch.device) -> dict[str, ArmSteps]:
    """The baseline and each refiner arm of ``runner`` (those of the preset and --kinds), and
    with --variants each refiner arm again as "<kind>, <variant>"."""
    def build(*refiner_flags: str) -> dict[str, ArmSteps]:
        return arm_builder(runner)(args.preset, device, args.data_dir, args.clutrr_data, args.batch_size,
                                kinds=args.kinds, refiner_flags=refiner_flags)

    arms = build()
    for variant in args.variants:
        flags, applies = VARIANTS[variant]
        arms.update({f"{name}, {variant}": arm for name, arm in build(*flags).items()
                     if name != BASELINE and applies(name)})
    return arms


def refiner_steps(model: torch.nn.Module) -> int | None:
    """The inner steps r the refiner of ``model`` takes at its next training step (its
    schedule's count there, else its steps); None without a refiner."""
    counts = set()
    for module in model.modules():
        if isinstance(getattr(module, "step_counter", None), StepCounter):
            scheduled = module.step_counter.steps()
            counts.add(module.steps if scheduled is None else scheduled)
    if len(counts) > 1:
        raise ValueError(f"the refiners of one arm take different step counts: {sorted(counts)}")
    return next(iter(counts), None)


def inner_step_ops(arm: ArmSteps, ops: int) -> int | None:
    """The kernel ops one more inner step adds to a training step of ``arm``, whose step at
    its r inner steps launches ``ops``: those of a step at r + 1 minus ``ops``; None for an
    arm without a refiner or at 0 steps (which trains as the baseline)."""
    steps = refiner_steps(arm.model)
    if not steps:
        return None
    with fixed_steps(arm.model, steps + 1):
        return step_kernel_ops(arm.train_step).ops - ops


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="paper", help="paper, smoke, or another preset the runners have (C-SWM: laptop)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed rounds (median); 0: no timing, FLOPs, kernel ops and memory only (they do not "
                             "depend on what else the machine runs)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--only", nargs="+", choices=RUNNERS, default=RUNNERS)
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=[],
                        help="refiner kinds besides the preset's arms, where the runner can take them "
                             "(their settings: the preset's section, else the kind's defaults)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=[],
                        help="each refiner arm also with backprop last, at 0 steps, and with the inner gradient by "
                             "autograd (each where the kind has the setting)")
    parser.add_argument("--clutrr-data", default=clutrr_data.PUBLIC_COPY, help="data_db9b8f04.zip or its URL")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--batch-size", type=int, default=None, help="every runner's batch (default: the preset's)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Implicit dimension choice for log_softmax")
    device = resolve_device(args.device)
    use_device(device)  # the Sort-of-CLEVR RN puts tensors on "cuda", the current device
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = ["| runner | arm | seconds per step | seconds per epoch | x baseline | GFLOPs per step | FLOPs x baseline "
            "| kernel ops per step | ops x baseline | ops per inner step | host syncs per step | peak memory (GB) "
            "| paper (appendix G) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for runner in args.only:
        arms = runner_arms(runner, args, device)
        seconds = alternating_medians({name: synchronised(arm.train_step, device) for name, arm in arms.items()},
                                      args.repeats) if args.repeats > 0 else None
        flops = {name: step_flops(arm.train_step) for name, arm in arms.items()}
        memory = {name: step_peak_memory(arm.train_step, device) for name, arm in arms.items()}
        # counted after the first step, at which Adam makes its state
        counts = {name: step_kernel_ops(arm.train_step) for name, arm in arms.items()}
        inner = {name: inner_step_ops(arm, counts[name].ops) for name, arm in arms.items()}
        for name, arm in arms.items():
            baseline = name == BASELINE
            timed = "| - | - | - |" if seconds is None else (
                f"| {seconds[name]:.4f} | {seconds[name] * arm.batches_per_epoch:.1f} | "
                f"{'1.00' if baseline else f'{seconds[name] / seconds[BASELINE]:.2f}'} |")
            flop_ratio = "-" if not flops[BASELINE] else "1.00" if baseline else f"{flops[name] / flops[BASELINE]:.2f}"
            ops, base_ops = counts[name].ops, counts[BASELINE].ops
            op_ratio = "-" if not base_ops else "1.00" if baseline else f"{ops / base_ops:.2f}"
            per_inner = "-" if inner[name] is None else inner[name]
            paper = "" if baseline else PAPER_OVERHEAD[runner]
            rows.append(f"| {runner} | {name} {timed} {flops[name] / 1e9:.4g} | {flop_ratio} | {ops} | {op_ratio} "
                        f"| {per_inner} | {counts[name].syncs} | {memory[name]:.3f} | {paper} |")
        print("\n".join(rows[-len(arms):]), file=sys.stderr, flush=True)  # as each runner is done
    timing = f"median of {args.repeats} rounds" if args.repeats > 0 else "not timed"
    print(f"\n{args.preset} preset, device {device}, {torch.get_num_threads()} threads, {timing}; FLOPs, kernel "
          "ops and host synchronisations counted from the aten operations of one step (benchmarks.step_costs: on "
          "the CPU, Adam and LSTMs over packed sequences launch more ops than on a GPU), peak memory of one step "
          "above what was in use before it:\n\n"
          + "\n".join(rows))


if __name__ == "__main__":
    main_guard(main)
