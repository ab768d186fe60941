import json
import multiprocessing
import os
import signal
import time

import pytest

from runners.common.errors import UsageError
from runners.common.results import ResultStore, settings_key

SETTINGS = {"epochs": 2, "lr": 1e-4}


def test_put_saves_at_once_and_a_new_store_resumes(tmp_path):
    store = ResultStore(tmp_path / "exp")
    store.put("baseline", SETTINGS, 0, {"acc": 0.5}, seconds=1.0)
    assert json.loads((tmp_path / "exp/results.json").read_text())["runs"]
    resumed = ResultStore(tmp_path / "exp")
    assert resumed.get("baseline", {"lr": 1e-4, "epochs": 2}, 0) == {"acc": 0.5}
    assert resumed.get("baseline", SETTINGS, 1) is None
    assert resumed.get("SRN", SETTINGS, 0) is None
    assert resumed.get("baseline", {**SETTINGS, "epochs": 3}, 0) is None


def test_finished_is_in_seed_order_and_skips_missing(tmp_path):
    store = ResultStore(tmp_path)
    for seed in (2, 0):
        store.put("baseline", SETTINGS, seed, {"acc": seed}, seconds=0)
    assert store.finished("baseline", SETTINGS, range(3)) == [{"acc": 0}, {"acc": 2}]


def test_settings_key_ignores_key_order():
    assert settings_key({"a": 1, "b": 2}) == settings_key({"b": 2, "a": 1})
    assert settings_key({"a": 1}) != settings_key({"a": 2})


def test_read_only_store_creates_nothing(tmp_path):
    store = ResultStore(tmp_path / "absent", create=False)
    assert store.get("baseline", {}, 0) is None and not (tmp_path / "absent").exists()


def test_corrupt_results_file_is_refused_and_kept(tmp_path):
    (tmp_path / "results.json").write_text('{"format": 1, "runs": {"trunc')
    with pytest.raises(UsageError, match="results.json is not a results file.*move it aside"):
        ResultStore(tmp_path)
    assert (tmp_path / "results.json").read_text() == '{"format": 1, "runs": {"trunc'


def test_unwritable_folder_is_a_usage_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="cannot create the results folder"):
        ResultStore(tmp_path / "file" / "exp")


def test_markdown_is_written(tmp_path):
    path = ResultStore(tmp_path).write_markdown("| a |\n")
    assert path.read_text() == "| a |\n"


def _write_runs(directory, writer: int, count: int) -> None:
    store = ResultStore(directory)
    for index in range(count):
        store.put(f"arm{writer}", {"writer": writer}, index, {"value": writer * 1000 + index}, 0.0)


@pytest.mark.slow
def test_concurrent_writers_lose_no_run(tmp_path):
    """8 processes each saving 25 runs into one results.json at once."""
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_runs, args=(tmp_path, writer, 25)) for writer in range(8)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
        assert process.exitcode == 0
    store = ResultStore(tmp_path)
    assert len(store.runs) == 200
    for writer in range(8):
        assert [m["value"] for m in store.finished(f"arm{writer}", {"writer": writer}, range(25))] == \
            [writer * 1000 + index for index in range(25)]


def _write_forever(directory) -> None:
    store = ResultStore(directory)
    for index in range(100_000):
        store.put("arm", {"big": "x" * 10_000}, index, {"value": index}, 0.0)


def test_a_writer_killed_mid_write_leaves_a_readable_file_and_no_lock(tmp_path):
    context = multiprocessing.get_context("spawn")
    writer = context.Process(target=_write_forever, args=(tmp_path,))
    writer.start()
    deadline = time.monotonic() + 60
    while not (tmp_path / "results.json").exists() or len(ResultStore(tmp_path).runs) < 20:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    survivors = ResultStore(tmp_path)
    assert len(survivors.runs) >= 20
    survivors.put("after", {}, 0, {"value": 1}, 0.0)  # the dead writer's lock went with it
    assert ResultStore(tmp_path).get("after", {}, 0) == {"value": 1}


def test_a_table_never_mixes_runs_of_different_environments(tmp_path):
    """Runs made on 1 and on 2 threads (or another device or torch) are not comparable:
    one line, not a silently mixed table."""
    store = ResultStore(tmp_path)
    one, two = {"threads": 1, "device": "CPU", "deterministic": True, "torch": "2.13.0"}, None
    store.put("baseline", {"k": 1}, 0, {"acc": 0.5}, 1.0, environment=one)
    store.put("srn", {"k": 2}, 0, {"acc": 0.6}, 1.0, environment=one)
    assert store.table({"baseline": {"k": 1}, "srn": {"k": 2}}, range(1)) == {"baseline": [{"acc": 0.5}],
                                                                              "srn": [{"acc": 0.6}]}
    two = {**one, "threads": 2}
    store.put("srn", {"k": 2}, 1, {"acc": 0.7}, 1.0, environment=two)
    with pytest.raises(UsageError, match="mixes runs made under different environments .*threads.: 1.* / .*threads.: 2"):
        store.table({"baseline": {"k": 1}, "srn": {"k": 2}}, range(2))
    assert store.table({"srn": {"k": 2}}, range(1)) == {"srn": [{"acc": 0.6}]}  # seed 1 is not in this table


def test_amend_adds_to_a_finished_runs_metrics_and_keeps_every_other_run(tmp_path):
    store = ResultStore(tmp_path)
    store.put("srn", SETTINGS, 0, {"acc": 0.5}, seconds=3.0, curve=[{"epoch": 1}])
    other_writer = ResultStore(tmp_path)
    other_writer.put("baseline", SETTINGS, 0, {"acc": 0.4}, seconds=1.0)
    store.amend("srn", SETTINGS, 0, {"steps_curve": [{"refiner_steps": 0, "acc": 0.1}]})
    resumed = ResultStore(tmp_path)
    assert resumed.get("srn", SETTINGS, 0) == {"acc": 0.5, "steps_curve": [{"refiner_steps": 0, "acc": 0.1}]}
    assert resumed.record("srn", SETTINGS, 0)["seconds"] == 3.0 and resumed.curve("srn", SETTINGS, 0) == [{"epoch": 1}]
    assert resumed.get("baseline", SETTINGS, 0) == {"acc": 0.4}


def test_a_named_table_holds_two_identities_of_one_arm_and_refuses_mixed_environments(tmp_path):
    store = ResultStore(tmp_path)
    one = {"threads": 2, "device": "CPU", "deterministic": True, "torch": "2.13.0"}
    store.put("srn", {"r": 1}, 0, {"acc": 0.5}, 1.0, environment=one)
    store.put("srn", {"r": 2}, 0, {"acc": 0.6}, 1.0, environment=one)
    arms = {"srn, r 1": ("srn", {"r": 1}), "srn, r 2": ("srn", {"r": 2})}
    assert store.named_table(arms, range(1)) == {"srn, r 1": [{"acc": 0.5}], "srn, r 2": [{"acc": 0.6}]}
    store.put("srn", {"r": 2}, 1, {"acc": 0.7}, 1.0, environment={**one, "threads": 1})
    with pytest.raises(UsageError, match="mixes runs made under different environments"):
        store.named_table(arms, range(2))


def test_runs_saved_before_the_cpu_model_was_recorded_count_as_made_on_the_one_cpu_the_others_name(tmp_path, capsys):
    store = ResultStore(tmp_path)
    unnamed = {"threads": 2, "device": "CPU", "deterministic": True, "torch": "2.13.0"}
    store.put("baseline", {"k": 1}, 0, {"acc": 0.5}, 1.0, environment=unnamed)
    store.put("srn", {"k": 2}, 0, {"acc": 0.6}, 1.0, environment={**unnamed, "device": "CPU: AMD EPYC (AVX2)"})
    arms = {"baseline": {"k": 1}, "srn": {"k": 2}}
    assert store.table(arms, range(1)) == {"baseline": [{"acc": 0.5}], "srn": [{"acc": 0.6}]}
    assert 'device "CPU") are taken as made on the CPU: AMD EPYC (AVX2) of the other runs' in capsys.readouterr().out
    store.put("srn", {"k": 2}, 1, {"acc": 0.7}, 1.0, environment={**unnamed, "device": "CPU: Intel Xeon (AVX512)"})
    with pytest.raises(UsageError, match="mixes runs made under different environments"):
        store.table(arms, range(2))  # two CPUs named: the unnamed one could be either
    store.put("srn", {"k": 2}, 1, {"acc": 0.7}, 1.0, environment={**unnamed, "threads": 1, "device": "CPU: AMD EPYC (AVX2)"})
    with pytest.raises(UsageError, match="mixes runs made under different environments"):
        store.table(arms, range(2))  # another thread count is another environment, CPU named or not
