"""The pinned upstream repositories under vendor/: checked before use, imported in isolation.

``checkout(name)`` initialises a missing submodule, then verifies that its HEAD is the
commit the project pins (the gitlink recorded in the project's index) and that no tracked
upstream file is modified; every failure is an ``UpstreamError`` whose one-line message
says how to fix it. ``isolated(upstream)`` makes the upstream's top-level modules (c-swm's
``utils``/``modules``, relational-networks' ``model``, clutrr-baselines' ``codes``, ...)
importable for the duration of a block without letting them collide with each other,
with ours, or stay in ``sys.modules`` afterwards.
"""
import contextlib
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Iterator, Mapping, Sequence

import git

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class UpstreamError(RuntimeError):
    """A vendored upstream is missing, unpinned or modified; the message says how to fix it."""


@dataclass(frozen=True)
class Upstream:
    """A verified checkout of a pinned upstream repository."""

    name: str
    root: Path
    commit: str


def checkout(name: str, project_root: Path = PROJECT_ROOT) -> Upstream:
    """Return the verified checkout of vendor/<name>, initialising the submodule if it is missing."""
    project_root = Path(project_root)
    path = f"vendor/{name}"
    project = _open_project(project_root)
    pin = _pinned_commit(project, path)
    root = project_root / path
    if not _is_checkout(root):
        if root.exists() and any(root.iterdir()):
            raise UpstreamError(
                f"{path} exists but is not a git checkout: remove it and run `git submodule update --init {path}`"
            )
        _initialise(project, path)
    head = git.Repo(root).head.commit.hexsha
    if head != pin:
        raise UpstreamError(
            f"{path} is at commit {head[:12]} but the project pins {pin[:12]}: run `git submodule update {path}`"
        )
    modified = git.Repo(root).git.status("--porcelain", "--untracked-files=no").splitlines()
    if modified:
        files = ", ".join(line[3:] for line in modified[:3]) + (", ..." if len(modified) > 3 else "")
        raise UpstreamError(
            f"{path} has modified upstream files ({files}); upstream files are never edited here: "
            f"restore them with `git -C {path} checkout -- .`"
        )
    return Upstream(name, root, pin)


def changes(upstream: Upstream) -> list[str]:
    """Everything a run left in the upstream tree: modified, untracked and ignored files
    (``git status --porcelain --ignored``); empty when the tree is as checked out."""
    return git.Repo(upstream.root).git.status("--porcelain", "--ignored", "--untracked-files=all").splitlines()


def _open_project(project_root: Path) -> git.Repo:
    try:
        return git.Repo(project_root)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UpstreamError(
            f"{project_root} is not a git checkout, so its pinned upstreams cannot be fetched or verified: "
            "clone the project with `git clone --recurse-submodules`"
        ) from None


def _pinned_commit(project: git.Repo, path: str) -> str:
    entry = project.index.entries.get((path, 0))
    if entry is None or entry.mode != 0o160000:
        raise UpstreamError(f"{path} is not a submodule of this project: restore .gitmodules and the pin from git")
    return entry.hexsha


def _is_checkout(root: Path) -> bool:
    try:
        return Path(git.Repo(root).working_tree_dir).resolve() == root.resolve()
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return False


def _initialise(project: git.Repo, path: str) -> None:
    try:
        project.git.submodule("update", "--init", "--", path)
    except git.GitCommandError as error:
        url = project.git.config("-f", ".gitmodules", "--get", f"submodule.{path}.url")
        said = " ".join(str(error.stderr).split())[-200:]
        raise UpstreamError(
            f"cannot fetch {url} for {path} ({said}): go online, or point git at a local mirror with "
            f"`git config --global url.<mirror>.insteadOf {url}`, then run `git submodule update --init {path}`"
        ) from None


def _top_level_names(root: Path) -> set[str]:
    """Module names an upstream provides at its top level (its .py files and folders)."""
    names = {p.stem for p in root.glob("*.py")}
    names |= {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    return names


def _belongs(module_name: str, names: set[str]) -> bool:
    return module_name.split(".", 1)[0] in names


@contextlib.contextmanager
def isolated(upstream: Upstream, shims: Mapping[str, ModuleType] | None = None) -> Iterator[None]:
    """Within the block, the upstream's top-level modules and the given shim modules are
    importable by their plain names (upstream root first on sys.path) and any module of
    the same name imported before is hidden; on exit all of them leave sys.modules again,
    what was hidden comes back and sys.path is restored (upstream scripts edit it). Objects created inside keep working afterwards.
    No bytecode is written into the upstream tree.
    """
    shims = dict(shims or {})
    names = _top_level_names(upstream.root) | {name.split(".", 1)[0] for name in shims}
    hidden = {name: sys.modules.pop(name) for name in list(sys.modules) if _belongs(name, names)}
    saved_path = list(sys.path)
    sys.path.insert(0, str(upstream.root))
    sys.modules.update(shims)
    write_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = write_bytecode
        for name in [name for name in sys.modules if _belongs(name, names)]:
            del sys.modules[name]
        sys.modules.update(hidden)
        sys.path[:] = saved_path


def import_modules(upstream: Upstream, names: Sequence[str], shims: Mapping[str, ModuleType] | None = None) -> SimpleNamespace:
    """Import the upstream's modules ``names`` in isolation; returns them as attributes
    (dots in a name become underscores: "codes.net.trainer" -> ``.codes_net_trainer``)."""
    with isolated(upstream, shims):
        modules = {name.replace(".", "_"): __import__(name, fromlist=["_"]) for name in names}
    return SimpleNamespace(**modules)


def module_copy(module: ModuleType, **replacements) -> ModuleType:
    """A copy of ``module`` (same name, same attributes) with ``replacements`` set on it,
    e.g. a subclass of an upstream model class under the class's name. The original keeps
    its own attributes, so code inside it (``super(Model, self)``) still finds them."""
    copy = ModuleType(module.__name__, module.__doc__)
    copy.__dict__.update(vars(module))
    copy.__dict__.update(replacements)
    return copy


def run_script(
    upstream: Upstream,
    script: str,
    argv: Sequence[str],
    shims: Mapping[str, ModuleType] | None = None,
    script_globals: Mapping[str, Any] | None = None,
) -> dict:
    """Run an upstream script (path relative to its root) as ``__main__`` with ``argv``, in
    isolation, from the current working directory, its globals starting with
    ``script_globals`` (a name there shadows a builtin of that name for the script's own
    code); returns the script's globals."""
    path = upstream.root / script
    saved_argv = sys.argv
    sys.argv = [str(path), *argv]
    try:
        with isolated(upstream, shims):
            return runpy.run_path(str(path), init_globals=script_globals, run_name="__main__")
    finally:
        sys.argv = saved_argv
