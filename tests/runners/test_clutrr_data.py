"""runners/clutrr_data.py on the shared CLUTRR zip: verified unpacking and copying, fixed
training subsets named without reading data, folders written whole or not at all, clear
errors."""
import csv
import shutil

import pytest

from runners import clutrr_data
from runners.common.errors import UsageError
from tests import clutrr_world


def unpacked():
    return clutrr_world.dataset_dir()


def test_the_zip_unpacks_to_the_verified_files(tmp_path):
    assert clutrr_data.sha256(clutrr_world.shared_zip()) == clutrr_data.ARCHIVE_SHA256
    target = clutrr_data.ensure_dataset(str(clutrr_world.shared_zip()), tmp_path)
    assert target == tmp_path.resolve() / "clutrr" / "data" / clutrr_data.NAME
    assert sorted(p.name for p in target.iterdir()) == sorted(clutrr_data.FILES)
    assert clutrr_data.first_mismatch(target) is None
    assert clutrr_data.ensure_dataset("unused when the folder is there", tmp_path) == target


def test_the_tests_data_dir_is_reused_as_it_is():
    assert clutrr_data.first_mismatch(unpacked()) is None
    assert clutrr_data.ensure_dataset("unused when the folder is there", clutrr_world.data_dir()) == unpacked()


def test_a_failed_unpacking_leaves_no_folder(tmp_path):
    (tmp_path / "other.zip").write_bytes(b"not the archive")
    with pytest.raises(UsageError, match="sha256"):
        clutrr_data.ensure_dataset(str(tmp_path / "other.zip"), tmp_path / "d")
    assert list((tmp_path / "d" / "clutrr" / "data").iterdir()) == []


def test_a_folder_is_verified_and_copied(tmp_path):
    target = clutrr_data.ensure_dataset(str(unpacked()), tmp_path)
    assert target == tmp_path.resolve() / "clutrr" / "data" / clutrr_data.NAME
    assert clutrr_data.first_mismatch(target) is None
    broken = tmp_path / "broken"
    shutil.copytree(target, broken)
    (broken / "1.7_test.csv").write_text("id,story\n")
    with pytest.raises(UsageError, match="1.7_test.csv is missing or is not the file"):
        clutrr_data.ensure_dataset(str(broken), tmp_path / "other")


def test_training_subset_is_fixed_and_keeps_the_tests(tmp_path):
    dataset = clutrr_data.ensure_dataset(str(unpacked()), tmp_path)
    subset = clutrr_data.training_subset(dataset, 100)
    with open(subset / clutrr_data.TRAIN_FILE, newline="") as handle:
        header, *rows = list(csv.reader(handle))
    with open(dataset / clutrr_data.TRAIN_FILE, newline="") as handle:
        full_header, *full = list(csv.reader(handle))
    assert header == full_header and len(rows) == 100 and len(full) == 15083
    positions = [full.index(row) for row in rows]
    assert positions == sorted(positions)  # a subset, in file order
    assert {row[-1] for row in rows} == {"train"} and len({row[10] for row in rows}) == 3  # tasks 1.2, 1.3, 1.4
    for name in clutrr_data.FILES:
        if name != clutrr_data.TRAIN_FILE:
            assert (subset / name).read_bytes() == (dataset / name).read_bytes()
    assert clutrr_world.data_dir() != tmp_path  # another data dir, same draw:
    again = clutrr_data.training_subset(unpacked(), 100)
    assert (again / clutrr_data.TRAIN_FILE).read_bytes() == (subset / clutrr_data.TRAIN_FILE).read_bytes()
    assert clutrr_data.training_subset(dataset, 20000) == dataset


def test_a_test_subset_has_the_first_rows_of_each_test_file_and_every_training_story(tmp_path):
    dataset = clutrr_data.ensure_dataset(str(unpacked()), tmp_path)
    subset = clutrr_data.training_subset(dataset, None, 5)
    assert subset.name == f"{clutrr_data.NAME}_test5"
    for name in clutrr_data.FILES:
        if name.endswith("_test.csv"):
            header, rows = clutrr_data.read_stories(subset / name)
            full_header, full = clutrr_data.read_stories(dataset / name)
            assert header == full_header and rows == full[:5] and len(full) > 5
    assert clutrr_data.read_stories(subset / clutrr_data.TRAIN_FILE) == \
        clutrr_data.read_stories(dataset / clutrr_data.TRAIN_FILE)
    assert (subset / "config.json").read_bytes() == (dataset / "config.json").read_bytes()


def test_subset_names_need_no_data():
    assert clutrr_data.subset_name(100) == f"{clutrr_data.NAME}_train100"
    assert clutrr_data.subset_name(100, 48) == f"{clutrr_data.NAME}_train100_test48"
    assert clutrr_data.subset_name(None) == clutrr_data.subset_name(15083) == clutrr_data.NAME
    with open(unpacked() / clutrr_data.TRAIN_FILE, newline="") as handle:
        assert sum(1 for _ in csv.reader(handle)) == clutrr_data.TRAIN_STORIES + 1  # and the header


def test_a_data_dir_under_codes_is_refused(tmp_path):
    with pytest.raises(UsageError, match="/codes"):
        clutrr_data.upstream_root(tmp_path / "codes" / "data")
