"""What every runner resolves first, the same way: device, preset, presets file, seeds,
threads, the refiner arms and where the runs execute (``resolve``); the same for a
named preset, e.g. the paper's to compare a run's settings with (``preset_invocation``); and
``--dry-run`` (``print_plan``)."""
import argparse
import json
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from refiners.registry import KINDS
from refiners.settings import KindSettings
from runners.common import checkpoints
from runners.common.cli import dest_of, flag_of, refiner_settings
from runners.common.errors import UsageError
from runners.common.device import resolve_device
from runners.common.launch import Launch, resolve_launch
from runners.common.presets import CONFIG_DIR, load_preset, resolve_preset
from runners.common.results import ResultStore
from runners.common.settings import frozen, with_overrides
from srn import capture

BASELINE = "baseline"


@dataclass(frozen=True)
class Invocation:
    """runner: its name; preset: smoke or paper; config_path: the presets file; config:
    the preset's settings besides seeds, threads and refiner (the runner's own, which it
    turns into its settings object); refiners: the settings of each refiner arm asked
    for (its kind's settings type, ``refiners.registry.KINDS``), by kind (seed unset: each run sets its own); threads: each run's torch
    threads; launch: where the runs execute; argv: the command's arguments (its jobs are
    the same command narrowed to one run); capture: whether the runs capture the refiners'
    inner loops (``srn.capture``, --compile); checkpoint_minutes: the least time between
    two writes of a run's resume checkpoint (``runners.common.checkpoints``; 0: every epoch)."""

    runner: str
    preset: str
    config_path: Path
    config: dict
    device: torch.device
    seeds: range
    threads: int | None
    refiners: dict[str, KindSettings]
    launch: Launch = Launch()
    argv: tuple[str, ...] = ()
    capture: bool = False
    checkpoint_minutes: float = 10.0


def arm_label(name: str, model: str | None = None) -> str:
    """An arm's display label in tables and plots: the baseline is ``model`` (the runner's
    name for the upstream model, e.g. "RN"; default "baseline"), a refiner arm its kind's
    label ("SRN"), after "<model> + " when the runner names its model; what follows ", " in the
    name is kept ("srn, pad20 r=0" -> "RN + SRN, pad20 r=0")."""
    kind, *rest = name.split(", ", 1)
    if kind == BASELINE:
        head = model or BASELINE
    else:
        head = f"{model} + {KINDS[kind].label}" if model else KINDS[kind].label
    return ", ".join([head, *rest])


def arm_labels(names: Sequence[str], model: str | None = None) -> dict[str, str]:
    """Arm name -> ``arm_label``."""
    return {name: arm_label(name, model) for name in names}


def resolve(runner: str, args: argparse.Namespace, kinds: Sequence[str] | None = None,
            refiner_defaults: Callable[[dict], Mapping[str, Any]] | None = None) -> Invocation:
    """The invocation of ``args`` (parsed with ``cli.add_common_arguments`` and
    ``cli.parse``). ``kinds``: the refiner kinds to set up (default: those asked for with
    their flags, --srn, --grn, ...); ``refiner_defaults(config)``: values for the refiner
    settings that the preset leaves null and no flag sets (called only then; config: the
    preset's settings). A kind that refines edges is refused unless the runner's reasoner
    weights pairs of elements (``args.uses_edges``, see ``cli.add_common_arguments``). A
    kind's settings are its preset section's (the kind's defaults where the preset has
    none) with the flags over them; --steps without --schedule drops a preset's schedule.
    With --launcher slurm the runs' device is that of the jobs (cuda when they get GPUs)
    and --preset auto means paper."""
    slurm = args.launcher == "slurm" and args.job is None
    if slurm:
        if args.device != "auto":
            raise UsageError(f"--device {args.device}: with --launcher slurm the jobs' device follows "
                             "--gpus-per-job (cuda when > 0): leave --device out")
        preset = resolve_preset(args.preset, True, why="--launcher slurm")
        device = torch.device("cpu")  # until the jobs' resources are known
    else:
        device = resolve_device(args.device)
        preset = resolve_preset(args.preset, device.type == "cuda")
    path = args.config or CONFIG_DIR / f"{runner}.yaml"
    config = load_preset(path, preset)
    offered = config.pop("refiner", {}) or {}
    preset_seeds, preset_threads = config.pop("seeds", None), config.pop("threads", None)
    section = config.pop("launcher", None) or {}
    launch, threads = resolve_launch(args, section, device, preset_threads, f"{path} preset {preset!r}")
    if slurm:
        device = torch.device("cuda" if launch.slurm.gpus_per_job else "cpu")
    seeds = args.seeds or preset_seeds
    if not seeds:
        raise UsageError(f"{path} preset {preset!r} lacks seeds")
    flags = {name: getattr(args, name) for name in refiner_settings() if getattr(args, name) is not None}
    asked = [name for name in KINDS if getattr(args, dest_of(name))] if kinds is None else list(kinds)
    unknown = sorted(set(offered) - set(KINDS))
    if unknown:
        raise UsageError(f"{path} refiner: unknown kind(s) {', '.join(unknown)} (known: {', '.join(KINDS)})")
    refused = [name for name in asked if KINDS[name].refines_edges and not args.uses_edges]
    if refused:
        raise UsageError(f"{flag_of(refused[0])}: runners/{runner}.py cannot take a {KINDS[refused[0]].label}: it "
                         "refines edge weights, and this upstream's reasoner weights no pairs of elements")
    if flags and not asked:
        raise UsageError(f"{', '.join(flag_of(name) for name in flags)} set the refiner arms: add "
                         f"{' or '.join(KINDS[name].flag for name in offered) or 'a refiner arm'}")
    for name in flags:
        if not any(name in KINDS[kind].setting_names() for kind in asked):
            owners = [kind for kind in KINDS if name in KINDS[kind].setting_names()]
            raise UsageError(f"{flag_of(name)} is a setting of {', '.join(owners)}, not of the arm(s) asked for "
                             f"({', '.join(asked)})")
    refiners = {}
    for name in asked:
        kind = KINDS[name]
        nullable = {field.name for field in fields(kind.settings) if field.default is None}  # None is a value there
        values = with_overrides(offered.get(name) or {},
                                {key: value for key, value in flags.items() if key in kind.setting_names()})
        if "steps" in flags and "schedule" not in flags:
            values["schedule"] = None  # --steps alone: that many steps throughout, whatever the preset's schedule
        unset = [key for key, value in values.items() if value is None and key not in nullable]
        if refiner_defaults is not None and unset:
            defaults = refiner_defaults(config)
            values.update({key: defaults.get(key) for key in unset})
        refiners[name] = frozen(kind.settings, {"kind": name, **values}, f"{path} refiner.{name} (with the flags)")
    return Invocation(runner, preset, Path(path), config, device, range(seeds), threads, refiners, launch,
                      tuple(args.argv), resolve_capture(args.compile, device, check=not slurm), args.checkpoint_minutes)


def resolve_capture(choice: str, device: torch.device, check: bool = True) -> bool:
    """--compile on|off|auto -> whether the runs capture their refiners' loops: auto is on
    with CUDA; on where this torch cannot compile for ``device`` is a UsageError (with
    ``check``: a command launching SLURM jobs leaves that to the jobs, on their nodes)."""
    if choice == "auto":
        return device.type == "cuda"
    if choice == "on" and check:
        try:
            capture.check_available(device)
        except capture.CaptureUnavailable as error:
            raise UsageError(f"--compile on: {error}; use --compile off") from None
    return choice == "on"


def preset_invocation(runner: str, parse_args: Callable[[list[str]], argparse.Namespace], preset: str,
                      flags: list[str], **options: Any) -> tuple[argparse.Namespace, Invocation]:
    """The arguments and invocation of ``preset`` of the project's configs/<runner>.yaml
    with ``flags`` (those that choose the table, e.g. --env space --k 3, and the refiner
    arms), as the runner resolves them (``parse_args``; ``options`` go to ``resolve``);
    the paper preset's is what a run's settings are compared with."""
    args = parse_args(["--preset", preset, "--device", "cpu", *flags])
    return args, resolve(runner, args, **options)


def refiner_identity(settings: KindSettings) -> dict:
    """The refiner's settings that identify an arm's runs: all but the per-run seed, those
    left at None (a setting not used, such as no schedule: so adding one to a kind leaves
    the identity of its earlier runs as it was) and those at the value the runs saved
    before the setting existed were made with (its field's ``saved_before``: those runs
    keep their identity, and a run with another value never shares it)."""
    return {setting.name: getattr(settings, setting.name) for setting in fields(settings)
            if setting.name != "seed" and getattr(settings, setting.name) is not None
            and getattr(settings, setting.name) != setting.metadata.get("saved_before")}


def print_plan(invocation: Invocation, store: ResultStore, arms: Mapping[str, dict], settings: Any = None) -> None:
    """``--dry-run``: one JSON document on stdout with everything that reaches a run — the
    invocation (with how often runs write their resume checkpoints), the runner's
    settings, each arm's settings (refiners included) — and the (arm, seed) runs, each
    marked done when results.json has it, and an unfinished one with a resume checkpoint
    with where it resumes (``resume``: "at epoch 7 of 50")."""
    runs = []
    for seed in invocation.seeds:
        for name, arm in arms.items():
            done = store.get(name, arm, seed) is not None
            resume = None if done else checkpoints.resume_point(checkpoints.checkpoint_path(store.directory, name, arm, seed))
            runs.append({"arm": name, "seed": seed, "done": done, **({"resume": resume} if resume else {})})
    plan = {
        "runner": invocation.runner,
        "preset": invocation.preset,
        "config": str(invocation.config_path),
        "device": str(invocation.device),
        "threads": invocation.threads,
        "compile": capture.description(invocation.device) if invocation.capture else "off",
        "checkpoint_minutes": invocation.checkpoint_minutes,
        "launch": asdict(invocation.launch),
        "seeds": list(invocation.seeds),
        "results": str(store.path),
        "settings": asdict(settings) if is_dataclass(settings) else settings,
        "arms": arms,
        "runs": runs,
        "to_run": sum(not run["done"] for run in runs),
    }
    print(json.dumps(plan, indent=1, default=str))
