"""The resume checkpoint of a run: bit-exact resume, damaged files, other environments,
when writes happen, the preemption signal and the per-run lock."""
import json
import os
import random
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from runners.common import checkpoints, random_states
from runners.common.checkpoints import RunCheckpoint, checkpoint_path, resume_point
from runners.common.invocation import Invocation, print_plan
from runners.common.results import ResultStore
from runners.common.runs import Arm, run_arms

EPOCHS = 4


def inline(minutes: float = 0.0, threads: int = 1) -> Invocation:
    """One seed on the CPU, a checkpoint at every epoch end unless ``minutes`` say."""
    return Invocation("toy", "smoke", Path("toy.yaml"), {}, torch.device("cpu"), range(1), threads, {},
                      checkpoint_minutes=minutes)


class Died(BaseException):
    """A run's process ending where it stands (nothing below catches it)."""


class EpochLoop:
    """A run that trains a weight for EPOCHS epochs, each drawing from every random
    generator, checkpointing at epoch ends; it dies after epoch ``die_after`` (once)."""

    def __init__(self, die_after: int | None = None):
        self.die_after, self.epochs_run = die_after, []

    def __call__(self, seed: int, checkpoint: RunCheckpoint) -> dict:
        weight, curve, done = torch.zeros(3), [], 0
        resumed = checkpoint.resume()
        if resumed is not None:
            weight, curve, done = resumed.state["weight"], resumed.state["curve"], resumed.epoch
        for epoch in range(done + 1, EPOCHS + 1):
            self.epochs_run.append(epoch)
            weight = weight + torch.rand(3) + np.random.rand() + random.random()
            curve = curve + [{"epoch": epoch, "weight": weight.sum().item()}]
            checkpoint.epoch_end(epoch, EPOCHS, lambda: {"weight": weight, "curve": curve})
            if epoch == self.die_after:
                self.die_after = None
                raise Died
        return {"weight": weight.tolist(), "after": torch.rand(1).item(), "curve": curve}


def saved(folder: Path) -> dict:
    record = ResultStore(folder).record("srn", {"k": 1}, 0)
    return {key: record[key] for key in ("metrics", "curve", "environment", "nondeterministic_kernels")}


def test_a_run_that_died_resumes_where_it_stood_and_ends_with_the_numbers_of_one_that_never_died(tmp_path, capsys):
    run_arms(ResultStore(tmp_path / "whole"), {"srn": Arm({"k": 1}, EpochLoop())}, inline())
    dying = EpochLoop(die_after=2)
    with pytest.raises(Died):
        run_arms(ResultStore(tmp_path / "died"), {"srn": Arm({"k": 1}, dying)}, inline())
    path = checkpoint_path(tmp_path / "died", "srn", {"k": 1}, 0)
    assert resume_point(path) == "at epoch 3 of 4"
    run_arms(ResultStore(tmp_path / "died"), {"srn": Arm({"k": 1}, dying)}, inline())
    assert dying.epochs_run == [1, 2, 3, 4]  # epochs 1 and 2 were not trained again
    assert "srn, seed 0: resuming at epoch 3 of 4" in capsys.readouterr().out
    assert saved(tmp_path / "died") == saved(tmp_path / "whole")
    assert not path.exists() and not path.with_name(path.name + ".previous").exists()  # gone once the result is saved


def test_leaving_out_the_random_generators_breaks_the_equality(tmp_path, monkeypatch):
    """The negative control: a resume that does not restore the generators differs."""
    run_arms(ResultStore(tmp_path / "whole"), {"srn": Arm({"k": 1}, EpochLoop())}, inline())
    dying = EpochLoop(die_after=2)
    with pytest.raises(Died):
        run_arms(ResultStore(tmp_path / "died"), {"srn": Arm({"k": 1}, dying)}, inline())
    monkeypatch.setattr(random_states, "restore", lambda states: None)
    run_arms(ResultStore(tmp_path / "died"), {"srn": Arm({"k": 1}, dying)}, inline())
    assert saved(tmp_path / "died")["metrics"] != saved(tmp_path / "whole")["metrics"]


def test_how_often_checkpoints_are_written_never_changes_the_numbers(tmp_path):
    for minutes in (0.0, 60.0):
        run_arms(ResultStore(tmp_path / str(minutes)), {"srn": Arm({"k": 1}, EpochLoop())}, inline(minutes))
    assert saved(tmp_path / "0.0") == saved(tmp_path / "60.0")


def checkpoint(tmp_path: Path, minutes: float = 0.0, threads: int = 1) -> RunCheckpoint:
    return RunCheckpoint(tmp_path / "srn.ckpt", "srn, seed 0", {"run": "srn/abc/seed0", "threads": threads}, minutes)


def test_writes_come_at_most_every_m_minutes_and_always_at_the_last_epoch(tmp_path, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(checkpoints.time, "monotonic", lambda: now[0])
    written = []
    run = checkpoint(tmp_path, minutes=10)
    monkeypatch.setattr(run, "write", lambda epoch, epochs, state: written.append(epoch))
    run.resume()
    for epoch, minute in zip(range(1, 7), (4, 8, 11, 15, 19, 20)):
        now[0] = minute * 60.0
        run.epoch_end(epoch, 6, dict)
        if written and written[-1] == epoch:
            run.last_write = now[0]
    assert written == [3, 6]  # 11 minutes after the start, then the last epoch


def test_a_damaged_checkpoint_falls_back_to_the_previous_one_then_to_a_fresh_start(tmp_path, capsys):
    run = checkpoint(tmp_path)
    run.write(1, 4, {"epoch": 1})
    run.write(2, 4, {"epoch": 2})
    data = run.path.read_bytes()
    run.path.write_bytes(data[:-10] + bytes(10))  # the payload's last bytes lost
    assert run.resume().state == {"epoch": 1}
    out = capsys.readouterr().out
    assert "its checkpoint" in out and "is damaged (checksum mismatch): trying the previous one" in out
    assert "resuming at epoch 2 of 4 (from the previous checkpoint)" in out


def test_both_damaged_is_a_fresh_start_said_once_per_file(tmp_path, capsys):
    run = checkpoint(tmp_path)
    run.write(1, 4, {"epoch": 1})
    run.write(2, 4, {"epoch": 2})
    run.path.write_bytes(b"garbage")
    run.previous.write_bytes(run.previous.read_bytes()[:100])
    assert run.resume() is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].endswith("is damaged (not a run checkpoint): trying the previous one")
    assert lines[1].endswith(": starting over") and "is damaged" in lines[1]


def test_a_write_killed_midway_leaves_the_checkpoint_before(tmp_path, monkeypatch, capsys):
    run = checkpoint(tmp_path)
    run.write(1, 4, {"epoch": 1})

    def half_then_die(path, data):
        path.with_name(f".{path.name}.{os.getpid()}.tmp").write_bytes(data[:len(data) // 2])
        raise Died

    monkeypatch.setattr(checkpoints, "write_durably", half_then_die)
    with pytest.raises(Died):
        run.write(2, 4, {"epoch": 2})
    monkeypatch.undo()
    assert checkpoint(tmp_path).resume().state == {"epoch": 1}
    assert "resuming at epoch 2 of 4 (from the previous checkpoint)" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.tmp"))  # the partial write is cleared


def test_a_checkpoint_of_another_environment_or_code_is_not_resumed(tmp_path, capsys):
    checkpoint(tmp_path, threads=1).write(2, 4, {"epoch": 2})
    assert checkpoint(tmp_path, threads=2).resume() is None
    assert capsys.readouterr().out == ("srn, seed 0: starting over: its checkpoint (epoch 2) was made under another "
                                       "environment or code (threads 1, now 2)\n")


def test_a_run_with_other_threads_starts_over(tmp_path, capsys):
    dying = EpochLoop(die_after=2)
    with pytest.raises(Died):
        run_arms(ResultStore(tmp_path), {"srn": Arm({"k": 1}, dying)}, inline(threads=1))
    run_arms(ResultStore(tmp_path), {"srn": Arm({"k": 1}, dying)}, inline(threads=2))
    assert dying.epochs_run == [1, 2, 1, 2, 3, 4]
    assert "was made under another environment or code (threads 1, now 2)" in capsys.readouterr().out


@pytest.fixture
def signalled():
    """A launcher's SIGUSR2 handler that records the signals it gets (as submitit's would
    requeue), under ``checkpoints.defer_preemption``; the previous handler comes back after."""
    handled = []
    previous = signal.signal(signal.SIGUSR2, lambda number, frame: handled.append(number))
    checkpoints.defer_preemption()
    yield handled
    signal.signal(signal.SIGUSR2, previous)


def test_the_preemption_signal_waits_for_the_next_epoch_end_and_its_checkpoint(signalled, tmp_path, capsys):
    run = checkpoint(tmp_path, minutes=60)
    run.resume()
    run.epoch_end(1, 4, lambda: {"epoch": 1})  # a short epoch: the next one ends soon
    assert not run.path.exists()
    os.kill(os.getpid(), signal.SIGUSR2)
    assert signalled == [] and not run.path.exists()  # mid-epoch: nothing yet
    run.epoch_end(2, 4, lambda: {"epoch": 2})
    assert signalled == [signal.SIGUSR2] and run.path.exists()  # written although 60 minutes have not passed
    assert "preempted: checkpoint of epoch 2 written, handing over to the launcher" in capsys.readouterr().out
    run.remove()
    os.kill(os.getpid(), signal.SIGUSR2)  # no run in training: at once
    assert signalled == [signal.SIGUSR2, signal.SIGUSR2]


def test_a_run_a_live_process_holds_is_waited_for_and_not_trained_twice(tmp_path, capsys):
    store, arm = ResultStore(tmp_path), Arm({"k": 1}, EpochLoop())
    held, release = threading.Event(), threading.Event()

    def live_process():
        with checkpoints.run_lock(checkpoint_path(tmp_path, "srn", {"k": 1}, 0), "srn, seed 0"):
            held.set()
            release.wait(10)
            ResultStore(tmp_path).put("srn", {"k": 1}, 0, {"by": "the live process"}, 1.0)

    thread = threading.Thread(target=live_process)
    thread.start()
    held.wait(10)
    threading.Timer(0.5, release.set).start()
    rerun = EpochLoop()
    results = run_arms(store, {"srn": Arm(arm.settings, rerun)}, inline())
    thread.join()
    assert rerun.epochs_run == [] and results == {"srn": [{"by": "the live process"}]}
    assert "srn, seed 0: another live process is training it; waiting for it to end" in capsys.readouterr().out


def test_a_checkpoint_left_by_a_run_that_died_after_saving_its_result_is_removed(tmp_path):
    store = ResultStore(tmp_path)
    run_arms(store, {"srn": Arm({"k": 1}, EpochLoop())}, inline())
    left = RunCheckpoint(checkpoint_path(tmp_path, "srn", {"k": 1}, 0), "srn, seed 0", {})
    left.write(4, 4, {})
    run_arms(store, {"srn": Arm({"k": 1}, EpochLoop())}, inline())
    assert not left.path.exists()


def draws() -> tuple:
    return torch.rand(2).tolist(), np.random.rand(), random.random()


def test_random_states_come_back_whole():
    states = random_states.captured()
    first = draws()
    random_states.restore(states)
    assert draws() == first
    with random_states.kept():
        draws()
    assert draws() != first  # the block drew, yet what follows it is what followed before it
    random_states.restore(states)
    draws()
    after = draws()
    random_states.restore(states)
    with random_states.kept():
        draws()
    draws()
    assert draws() == after


def test_a_dry_run_shows_where_each_unfinished_run_resumes(tmp_path, capsys):
    with pytest.raises(Died):
        run_arms(ResultStore(tmp_path), {"srn": Arm({"k": 1}, EpochLoop(die_after=2))}, inline())
    capsys.readouterr()
    print_plan(inline(), ResultStore(tmp_path, create=False), {"srn": {"k": 1}, "baseline": {}})
    assert json.loads(capsys.readouterr().out)["runs"] == [
        {"arm": "srn", "seed": 0, "done": False, "resume": "at epoch 3 of 4"},
        {"arm": "baseline", "seed": 0, "done": False}]


def test_a_run_resumed_after_its_last_epoch_lets_the_preemption_signal_through_at_once(signalled, tmp_path):
    checkpoint(tmp_path).write(4, 4, {"epoch": 4})
    assert checkpoint(tmp_path).resume().epoch == 4
    os.kill(os.getpid(), signal.SIGUSR2)  # during the evaluation: no epoch end will come
    assert signalled == [signal.SIGUSR2]


def test_the_preemption_signal_is_handed_over_at_once_when_the_epoch_would_end_too_late(signalled, tmp_path,
                                                                                         monkeypatch):
    """An epoch longer than SLURM's warning (Sort-of-CLEVR's paper epochs): the job is
    requeued at once and resumes from its last checkpoint, rather than killed unrequeued."""
    now = [0.0]
    monkeypatch.setattr(checkpoints.time, "monotonic", lambda: now[0])
    run = checkpoint(tmp_path, minutes=60)
    run.resume()
    os.kill(os.getpid(), signal.SIGUSR2)  # before any epoch has ended: its length is unknown
    assert signalled == [signal.SIGUSR2]
    now[0] = 960.0  # a 16-minute epoch
    run.epoch_end(1, 4, lambda: {"epoch": 1})
    now[0] = 960.0 + 900.0  # 15 minutes into the next: it ends in about one
    os.kill(os.getpid(), signal.SIGUSR2)
    assert signalled == [signal.SIGUSR2, signal.SIGUSR2] and run.preempted is None
    now[0] = 960.0 + 930.0  # 30 s before its expected end: waited for
    os.kill(os.getpid(), signal.SIGUSR2)
    assert len(signalled) == 2 and run.preempted is not None
