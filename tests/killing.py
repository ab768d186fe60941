"""Run a runner's command in this process and SIGKILL it at a chosen point, as a crash, the
OOM killer or a lost node would: no handler runs, no file is closed.

    python tests/killing.py POINT RUNNER ARGV...

(``killed_until_done`` runs it so from a test, once per point, then to the end;
``every_point`` gives the points the shared checkpoint mechanism is tested at, on one runner,
``runner_points`` those every other runner is killed at.)

POINT is one of
  ``after:MODULE:FUNCTION:N``   just after the N-th call of FUNCTION returns;
  ``before:MODULE:FUNCTION:N``  just before the N-th call of FUNCTION runs;
  ``mid-write:N``               in the N-th checkpoint write, after half of its bytes;
  ``none``                      never (the run ends as it would);
FUNCTION may be ``Class.method``."""
import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AFTER_A_CHECKPOINT = "after:runners.common.checkpoints:RunCheckpoint.write:1"
BETWEEN_SAVE_AND_REMOVAL = "before:runners.common.checkpoints:RunCheckpoint.remove:1"


def every_point(evaluation: str) -> list[str]:
    """The kill points of a run of 3 epochs, in order: right after its first checkpoint,
    in the middle of its second write, at ``evaluation`` (a call of the runner's evaluation
    after training) and between saving its result and removing its checkpoint."""
    return [AFTER_A_CHECKPOINT, "mid-write:2", evaluation, BETWEEN_SAVE_AND_REMOVAL]


def runner_points(evaluation: str) -> list[str]:
    """The kill points at which a runner restores its own state: right after its first
    checkpoint (its training loop goes on from the checkpoint) and at ``evaluation`` after
    training (it evaluates from its last epoch's state). A kill mid-write and one between
    saving the result and removing the checkpoint are the shared mechanism's business
    (``runners.common.checkpoints``, ``runs``), tested at ``every_point`` on circles."""
    return [AFTER_A_CHECKPOINT, evaluation]


def assert_resumed_at_every_point(outputs: list[str], arm: str = "baseline") -> None:
    """What the reruns after ``every_point``'s kills say, in order, for the first run (``arm``, seed 0)."""
    assert f"{arm}, seed 0: resuming at epoch 2 of 3" in outputs[1]
    assert f"{arm}, seed 0: resuming at epoch 3 of 3 (from the previous checkpoint)" in outputs[2]
    assert f"{arm}, seed 0: resuming after its last epoch (3): evaluating" in outputs[3]


def assert_resumed_at_runner_points(outputs: list[str], epochs: int) -> None:
    """What the reruns after ``runner_points``' kills say, in order, for the first run
    (baseline, seed 0) of ``epochs`` epochs."""
    assert f"baseline, seed 0: resuming at epoch 2 of {epochs}" in outputs[1]
    assert f"baseline, seed 0: resuming after its last epoch ({epochs}): evaluating" in outputs[2]


def run(point: str, runner: str, argv: list[str]) -> subprocess.CompletedProcess:
    """The command ``runners/<runner>.py ARGV`` killed at ``point`` (or not: "none")."""
    return subprocess.run([sys.executable, __file__, point, runner, *argv], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONHASHSEED": "0"})


def killed_until_done(runner: str, argv: list[str], points: list[str]) -> list[str]:
    """Run the command once per kill point, each killed there by SIGKILL, then once to its
    end; returns the output (stdout) of each, in order."""
    outputs = []
    for point in points:
        result = run(point, runner, argv)
        assert result.returncode == -signal.SIGKILL, f"not killed at {point}: {result.stderr[-2000:]}"
        outputs.append(result.stdout)
    result = run("none", runner, argv)
    assert result.returncode == 0, result.stderr[-2000:]
    return outputs + [result.stdout]


def numbers(results_json: Path) -> dict:
    """``numbers_of`` the runs of a results.json."""
    return numbers_of(json.loads(Path(results_json).read_text())["runs"])


def numbers_of(runs: dict) -> dict:
    """What each run's record says about its numbers: everything but when it finished, how
    long it took and timings among its metrics (``*_seconds``)."""
    return {key: {**{name: value for name, value in run.items() if name not in ("seconds", "finished")},
                  "metrics": {name: value for name, value in run["metrics"].items() if not name.endswith("seconds")}}
            for key, run in runs.items()}

from runners.common import checkpoints  # noqa: E402
from runners.common.cli import main_guard  # noqa: E402
from runners.registry import runner_module  # noqa: E402


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def kill_at_call(when: str, module_name: str, function: str, nth: int) -> None:
    """Replace ``module_name.function`` (``Class.method`` allowed) by a wrapper that kills
    this process before or after its ``nth`` call."""
    owner = importlib.import_module(module_name)
    *path, name = function.split(".")
    for part in path:
        owner = getattr(owner, part)
    original, calls = getattr(owner, name), [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if when == "before" and calls[0] == nth:
            die()
        result = original(*args, **kwargs)
        if when == "after" and calls[0] == nth:
            die()
        return result

    setattr(owner, name, wrapper)


def kill_mid_write(nth: int) -> None:
    """The ``nth`` checkpoint write stops after half of its bytes are on disk."""
    original, calls = checkpoints.write_durably, [0]

    def half_then_die(path, data):
        calls[0] += 1
        if calls[0] < nth:
            return original(path, data)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            handle.write(data[:len(data) // 2])
            handle.flush()
            os.fsync(handle.fileno())
        die()

    checkpoints.write_durably = half_then_die


def main(point: str, runner: str, argv: list[str]) -> None:
    if point.startswith("mid-write:"):
        kill_mid_write(int(point.split(":")[1]))
    elif point.startswith(("after:", "before:")):
        when, module_name, function, nth = point.split(":")
        kill_at_call(when, module_name, function, int(nth))
    elif point != "none":
        raise SystemExit(f"unknown kill point {point!r}")
    module = runner_module(runner)
    main_guard(lambda: module.main(argv))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
