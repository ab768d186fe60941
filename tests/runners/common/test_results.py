import json

import pytest

from runners.common.cli import UsageError
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
