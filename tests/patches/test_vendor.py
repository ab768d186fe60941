"""patches.vendor on throwaway git repositories (never the real vendor/), and isolation
between the real pinned upstreams."""
import subprocess
import sys
import types
from pathlib import Path

import git
import pytest

from patches import vendor
from patches.vendor import UpstreamError

PAPER_PINS = {
    "relational-networks": "74cd9ac0703db01c6268a6515015b98bed3e4602",
    "c-swm": "e944b24bcaa42d9ee847f30163437a50f0237aa0",
    "clutrr-baselines": "2756a3836e75d8a3e27d6e97379ac3efa4c9577a",
}


@pytest.fixture(autouse=True)
def allow_file_urls(monkeypatch):
    """Submodules from local paths need protocol.file.allow (git >= 2.38)."""
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.file.allow")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "always")


def run_git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


def make_upstream(path: Path, files: dict[str, str]) -> list[str]:
    """A git repository with two commits; returns their hashes, oldest first."""
    path.mkdir(parents=True)
    run_git(path, "init", "-q")
    commits = []
    for round_ in (1, 2):
        for name, text in files.items():
            (path / name).write_text(f"{text}\nROUND = {round_}\n")
        run_git(path, "add", ".")
        run_git(path, "commit", "-q", "-m", f"round {round_}")
        commits.append(run_git(path, "rev-parse", "HEAD"))
    return commits


@pytest.fixture
def project(tmp_path):
    """A project with vendor/fake pinned at the upstream's first commit; returns (root, pin, latest)."""
    first, latest = make_upstream(tmp_path / "upstream", {"fakemod.py": "VALUE = 'fake'"})
    root = tmp_path / "project"
    root.mkdir()
    run_git(root, "init", "-q")
    run_git(root, "submodule", "add", "-q", str(tmp_path / "upstream"), "vendor/fake")
    run_git(root / "vendor/fake", "checkout", "-q", first)
    run_git(root, "add", ".")
    run_git(root, "commit", "-q", "-m", "pin")
    return root, first, latest


def test_verified_checkout(project):
    root, pin, _ = project
    upstream = vendor.checkout("fake", root)
    assert upstream.commit == pin and upstream.root == root / "vendor/fake"


def test_missing_submodule_is_initialised(project, tmp_path):
    root, pin, _ = project
    clone = tmp_path / "clone"
    git.Repo.clone_from(str(root), str(clone))
    assert not any((clone / "vendor/fake").iterdir())
    assert vendor.checkout("fake", clone).commit == pin
    assert (clone / "vendor/fake/fakemod.py").exists()


def test_wrong_commit(project):
    root, pin, latest = project
    run_git(root / "vendor/fake", "checkout", "-q", latest)
    with pytest.raises(UpstreamError, match=f"at commit {latest[:12]} but the project pins {pin[:12]}.*git submodule update vendor/fake"):
        vendor.checkout("fake", root)


def test_modified_file(project):
    root, _, _ = project
    (root / "vendor/fake/fakemod.py").write_text("VALUE = 'edited'\n")
    with pytest.raises(UpstreamError, match=r"modified upstream files \(fakemod.py\).*checkout -- \."):
        vendor.checkout("fake", root)


def test_untracked_files_are_not_modifications(project):
    root, pin, _ = project
    (root / "vendor/fake/output.log").write_text("written by a run\n")
    assert vendor.checkout("fake", root).commit == pin


def test_not_a_git_checkout(tmp_path):
    with pytest.raises(UpstreamError, match="is not a git checkout.*--recurse-submodules"):
        vendor.checkout("fake", tmp_path)


def test_submodule_folder_that_is_not_a_checkout(project, tmp_path):
    root, _, _ = project
    clone = tmp_path / "clone"
    git.Repo.clone_from(str(root), str(clone))
    (clone / "vendor/fake/fakemod.py").write_text("copied by hand\n")
    with pytest.raises(UpstreamError, match="exists but is not a git checkout.*update --init vendor/fake"):
        vendor.checkout("fake", clone)


def test_unregistered_upstream(project):
    root, _, _ = project
    with pytest.raises(UpstreamError, match="vendor/other is not a submodule"):
        vendor.checkout("other", root)


def test_cannot_fetch(project, tmp_path):
    root, _, _ = project
    clone = tmp_path / "clone"
    git.Repo.clone_from(str(root), str(clone))
    (tmp_path / "upstream").rename(tmp_path / "gone")
    with pytest.raises(UpstreamError, match="cannot fetch .*upstream for vendor/fake.*insteadOf"):
        vendor.checkout("fake", clone)


def test_errors_are_one_line(project):
    root, _, latest = project
    run_git(root / "vendor/fake", "checkout", "-q", latest)
    with pytest.raises(UpstreamError) as error:
        vendor.checkout("fake", root)
    assert "\n" not in str(error.value)


def test_project_pins_the_papers_commits():
    project = git.Repo(vendor.PROJECT_ROOT)
    for name, commit in PAPER_PINS.items():
        assert project.index.entries[(f"vendor/{name}", 0)].hexsha == commit
    assert {submodule.path for submodule in project.submodules} == {f"vendor/{name}" for name in PAPER_PINS}


# --- isolation -----------------------------------------------------------------------------


def test_isolated_import_hides_and_restores_same_named_modules(project):
    root, _, _ = project
    ours = types.ModuleType("fakemod")
    sys.modules["fakemod"] = ours
    try:
        upstream = vendor.checkout("fake", root)
        with vendor.isolated(upstream):
            import fakemod
            assert fakemod is not ours and fakemod.VALUE == "fake"
        assert sys.modules["fakemod"] is ours
        assert fakemod.VALUE == "fake"  # objects made inside keep working
    finally:
        del sys.modules["fakemod"]
    assert not list(upstream.root.rglob("__pycache__")), "bytecode written into the upstream tree"


def test_isolated_restores_sys_path_and_removes_shims(project):
    upstream = vendor.checkout("fake", project[0])
    path_before = list(sys.path)
    shim = types.ModuleType("gym")
    with vendor.isolated(upstream, shims={"gym": shim}):
        sys.path.append("/somewhere/an/upstream/script/added")
        import gym
        assert gym is shim
    assert sys.path == path_before and "gym" not in sys.modules


def test_real_upstreams_do_not_collide():
    cswm = vendor.checkout("c-swm")
    rn = vendor.checkout("relational-networks")
    loaded = vendor.import_modules(cswm, ["utils", "modules"])
    assert Path(loaded.utils.__file__).parent == cswm.root
    assert loaded.modules.utils is loaded.utils  # c-swm's modules imported c-swm's utils
    model = vendor.import_modules(rn, ["model"]).model
    assert Path(model.__file__).parent == rn.root
    with vendor.isolated(rn):
        with pytest.raises(ModuleNotFoundError):
            import modules  # noqa: F401  (c-swm's, not visible from relational-networks)
    leaked = [name for name, module in sys.modules.items()
              if str(vendor.PROJECT_ROOT / "vendor") in str(getattr(module, "__file__", "") or "")]
    assert leaked == []
    assert "utils" not in sys.modules and "model" not in sys.modules


def test_changes_lists_whatever_a_run_left_behind(project):
    upstream = vendor.checkout("fake", project[0])
    assert vendor.changes(upstream) == []
    (upstream.root / "log.txt").write_text("")
    with vendor.isolated(upstream):
        import fakemod  # noqa: F401  (must not leave bytecode)
    assert vendor.changes(upstream) == ["?? log.txt"]
