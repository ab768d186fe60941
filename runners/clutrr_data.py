"""CLUTRR data_db9b8f04 (train k=2,3,4; test k=2..10) for runners/clutrr.py.

``ensure_dataset(source, data_dir)`` downloads (URL) or copies (zip or unpacked folder) the
archive, verifies it by sha256 and unpacks it into ``<data_dir>/clutrr/data/data_db9b8f04``,
where the upstream looks for it (patches.clutrr runs it from ``<data_dir>/clutrr/work``);
later calls verify and reuse it. ``training_subset`` derives a folder with a fixed random
subset of the training rows (and, for the tests' tiny runs, the first rows of each test
file) for quick runs; ``subset_name`` names
its folder without reading anything. Each folder appears whole or not at all
(``runners.common.atomic``). Nothing is edited in place: the upstream adds its dict.json
beside the files, the empty ``test_tasks`` of config.json is supplied at run time.
CLUTRR is CC-BY-NC 4.0 (Sinha et al., EMNLP 2019).
"""
import csv
import hashlib
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from runners.common.atomic import replaced_atomically
from runners.common.errors import UsageError

NAME = "data_db9b8f04"
PUBLIC_COPY = "https://github.com/uclnlp/ctp/raw/master/data/clutrr-emnlp/data_db9b8f04.zip"
ARCHIVE_SHA256 = "52571c7feb2dc628d6cd56cc9e03f2572d343fdccbbc5c7301caa02f12f1b7bd"
TRAIN_FILE = "1.2,1.3,1.4_train.csv"
TRAIN_STORIES = 15083  # rows of TRAIN_FILE (verified by its sha256)
TEST_KS = tuple(range(2, 11))
FILES = {
    TRAIN_FILE: "4d129c71dcfa28ce3e195dd93bda62daa2e710f7137fdd38c2864c5f9ac2e4d6",
    "1.2_test.csv": "00d73fe30511fc24fbaf47f1ec1b73f1bf215c4853510282b7874526d64e091f",
    "1.3_test.csv": "0d8509765e78d2ddf4b7d965596441f668da477de3aba696e2f80d6ab16c4fc5",
    "1.4_test.csv": "969e86ae3e8df5608e72acab24b9439d37ac1fe69b932125dfadb4f244a83347",
    "1.5_test.csv": "efc80b07c7852ca9289188596f0dc392195cb014dec16c3c79ed9500d7fc8afa",
    "1.6_test.csv": "5e0bb01210b4130e70be15233476aa341476c50e786fc7a5c77054b8964dc4e8",
    "1.7_test.csv": "eacc6dd3f098247c9ef2eac1e3ba9ec31400663aa4d859e582d568c87172a470",
    "1.8_test.csv": "cdd631b8a77c835f1165117287bcfca94ecf8c2e1fbef0165772d42605b62049",
    "1.9_test.csv": "d88fc447f97e9f718a755dd49347d90f4ebdc5afd1610ae1372c3d097bece15f",
    "1.10_test.csv": "001a258e85dd24b0a313ef8a890d52496c553b551c578d4d3852a714785abc62",
    "config.json": "18476c905fdfafae67f81f6db5609a9e363e632e99950af67263689434119d88",
}
SUBSET_SEED = 0
LOCAL_COPY_HINT = f"pass --data with a local copy of {NAME}.zip or of its unpacked folder"


def upstream_root(data_dir: Path) -> Path:
    """The folder whose ``data/`` subfolder the upstream reads (it runs in ``work/`` below it)."""
    root = Path(data_dir).resolve() / "clutrr"
    if "/codes" in str(root):
        raise UsageError(f"--data-dir {data_dir}: the upstream cuts paths at '/codes', choose a folder without it")
    return root


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def first_mismatch(folder: Path) -> str | None:
    """The first expected file that is missing or differs in ``folder``, or None."""
    for name, expected in FILES.items():
        path = folder / name
        if not path.is_file() or sha256(path) != expected:
            return name
    return None


def ensure_dataset(source: str, data_dir: Path) -> Path:
    """The verified dataset folder ``<data_dir>/clutrr/data/data_db9b8f04``, from ``source``
    (URL, zip or folder) unless it is already there."""
    target = upstream_root(data_dir) / "data" / NAME
    if target.exists():
        bad = first_mismatch(target)
        if bad:
            raise UsageError(f"{target} is incomplete or corrupt ({bad} is missing or differs): delete that folder and run again")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(target) as folder:
        folder.mkdir()
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source):
            archive = folder / f"{NAME}.zip"
            _download(source, archive)
            _unpack(archive, folder, source)
            archive.unlink()
        elif Path(source).is_file():
            _unpack(Path(source), folder, source)
        elif Path(source).is_dir():
            _copy_folder(Path(source), folder)
        else:
            raise UsageError(f"--data {source}: no such file or folder; {LOCAL_COPY_HINT}")
    return target


def _download(url: str, destination: Path) -> None:
    print(f"downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as handle:
            shutil.copyfileobj(response, handle)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise UsageError(f"cannot download {url} ({reason}); offline, {LOCAL_COPY_HINT} "
                         f"(e.g. --data ../shared/data/clutrr/{NAME}.zip)") from None


def _unpack(archive: Path, destination: Path, source: str) -> None:
    """The verified archive's files into the folder ``destination``."""
    digest = sha256(archive)
    if digest != ARCHIVE_SHA256:
        raise UsageError(f"--data {source}: sha256 {digest[:16]}... is not that of {NAME}.zip "
                         f"({ARCHIVE_SHA256[:16]}...)")
    with zipfile.ZipFile(archive) as members:
        for name in FILES:
            (destination / name).write_bytes(members.read(name))


def _copy_folder(folder: Path, destination: Path) -> None:
    """The verified files of ``folder`` into the folder ``destination``."""
    bad = first_mismatch(folder)
    if bad:
        raise UsageError(f"--data {folder}: {bad} is missing or is not the file of {NAME}; {LOCAL_COPY_HINT}")
    for name in FILES:
        shutil.copyfile(folder / name, destination / name)


def subset_name(rows: int | None, test_rows: int | None = None) -> str:
    """The name of the data folder ``training_subset`` gives for ``rows`` and ``test_rows``
    (read from nothing)."""
    train = "" if rows is None or rows >= TRAIN_STORIES else f"_train{rows}"
    return f"{NAME}{train}{'' if test_rows is None else f'_test{test_rows}'}"


def read_stories(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CLUTRR csv file."""
    with open(path, newline="") as handle:
        header, *stories = list(csv.reader(handle))
    return header, stories


def write_stories(path: Path, header: list[str], stories) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(stories)


def training_subset(dataset: Path, rows: int | None, test_rows: int | None = None) -> Path:
    """The verified dataset folder with ``rows`` training stories drawn at random (fixed
    seed, file order kept; None: all) and the first ``test_rows`` stories of each test file
    (None: all, the files unchanged), in ``subset_name(rows, test_rows)`` beside it; the
    full dataset when neither is smaller than its files."""
    target = dataset.with_name(subset_name(rows, test_rows))
    if target == dataset or target.exists():
        return target
    header, stories = read_stories(dataset / TRAIN_FILE)
    keep = range(len(stories)) if subset_name(rows) == NAME else \
        np.sort(np.random.default_rng(SUBSET_SEED).choice(len(stories), rows, replace=False))
    with replaced_atomically(target) as folder:
        folder.mkdir()
        write_stories(folder / TRAIN_FILE, header, (stories[i] for i in keep))
        for name in FILES:
            if name.endswith("_test.csv") and test_rows is not None:
                header, tests = read_stories(dataset / name)
                write_stories(folder / name, header, tests[:test_rows])
            elif name != TRAIN_FILE:
                shutil.copyfile(dataset / name, folder / name)
    return target
