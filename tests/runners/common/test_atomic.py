import os

import pytest

from runners.common.atomic import atomic_write_text, replaced_atomically


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    atomic_write_text(path, "old")

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary left behind


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "dataset"
    with pytest.raises(RuntimeError):
        with replaced_atomically(target) as temporary:
            temporary.mkdir()
            (temporary / "part").write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with replaced_atomically(target) as temporary:
        temporary.mkdir()
        (temporary / "part").write_text("whole")
    assert (target / "part").read_text() == "whole" and [p.name for p in tmp_path.iterdir()] == ["dataset"]
