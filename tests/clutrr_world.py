"""CLUTRR for the tests, without runner code (tests of the adapter and patch layers use it):
the shared data_db9b8f04.zip (``../shared/data/clutrr/`` beside the project, as in CI; a
missing zip fails the tests), unpacked once per test run into a temporary data folder laid
out as runners.clutrr_data lays it out (so it serves as a runner's --data-dir), a tiny
training subset of it, and tiny upstream RN models on one real batch, built by the
upstream's own code."""
import atexit
import contextlib
import csv
import functools
import shutil
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from adapters import clutrr as adapter
from refiners.descent import DescentSettings
from patches.clutrr import upstream
from patches.clutrr.run_config import build_config, first_training_batch, prepare_dictionary
from patches.vendor import PROJECT_ROOT

SHARED_ZIP = PROJECT_ROOT.parent / "shared" / "data" / "clutrr" / "data_db9b8f04.zip"
DATASET = "data_db9b8f04"
TRAIN_FILE = "1.2,1.3,1.4_train.csv"  # stories chaining k=2,3,4 relations (then the *_test.csv files, k=2..10)
TINY_ROWS = 48
TINY_DATASET = f"{DATASET}_first{TINY_ROWS}"  # a name the runner never uses
PAPER_DROPOUT, PAPER_L2 = 0.5, 1e-4


def shared_zip() -> Path:
    assert SHARED_ZIP.is_file(), f"CLUTRR data missing: expected {SHARED_ZIP} (../shared/data/clutrr/ beside the project)"
    return SHARED_ZIP


def scratch_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix)).resolve()
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def data_dir() -> Path:
    """A data folder (a runner's --data-dir) with data_db9b8f04 unpacked from the shared zip
    into ``clutrr/data/data_db9b8f04`` and the tiny training subset beside it."""
    path = scratch_dir("clutrr-data-")
    dataset = path / "clutrr" / "data" / DATASET
    with zipfile.ZipFile(shared_zip()) as archive:
        names = [name for name in archive.namelist() if name.endswith(".csv") or name == "config.json"]
        archive.extractall(dataset, names)
    tiny = dataset.with_name(TINY_DATASET)
    tiny.mkdir()
    for name in names:
        shutil.copyfile(dataset / name, tiny / name)
    with open(dataset / TRAIN_FILE, newline="") as handle:
        rows = list(csv.reader(handle))[: 1 + TINY_ROWS]  # the header and the first stories
    with open(tiny / TRAIN_FILE, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


def dataset_dir() -> Path:
    """The unpacked data_db9b8f04 folder."""
    return data_dir() / "clutrr" / "data" / DATASET


@functools.cache
def tiny_data() -> tuple[Path, str]:
    """(upstream root, data folder name) of the tiny training subset, dict.json made."""
    root = data_dir() / "clutrr"
    prepare_dictionary(root, TINY_DATASET, scratch_dir("clutrr-logs-"))
    return root, TINY_DATASET


class TinyRN(nn.Module):
    """The upstream's RN encoder and decoder with their Trainer, as run_experiment builds them."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, trainer):
        nn.Module.__init__(self)
        self.encoder, self.decoder, self.trainer = encoder, decoder, trainer


@functools.cache
def world() -> SimpleNamespace:
    """The upstream modules, a paper-settings config and the first training batch of the
    tiny subset, prepared as run_experiment prepares them."""
    root, name = tiny_data()
    with upstream(root, output=scratch_dir("clutrr-world-") / "upstream.log") as modules:
        config = build_config(modules, name, 0, scratch_dir("clutrr-run-"), "cpu", encoder_dropout=PAPER_DROPOUT,
                              l2=PAPER_L2)
        data, batch = first_training_batch(modules, config, root / "data" / name, TRAIN_FILE)
    return SimpleNamespace(modules=modules, config=config, data=data, batch=batch)


def build_model(refiner: DescentSettings | None = None, seed: int = 0,
                padding: str = "masked") -> tuple[TinyRN, nn.Module | None]:
    """The upstream RN (same initial weights for every call with the same seed), with the
    refiner installed when given (its seed: ``seed``; ``padding``: adapters.clutrr's);
    returns (model, refiner)."""
    w = world()
    torch.manual_seed(seed)
    model_config = w.modules.net_registry.prepare_config_for_model(w.config)  # as choose_model
    encoder = w.modules.relation_nets.RelationNetworkEncoder(model_config)
    decoder = w.modules.relation_nets.RelationNetworkDecoder(model_config)
    inserted = None if refiner is None else adapter.install(encoder, replace(refiner, seed=seed), padding=padding)
    trainer = w.modules.trainer.Trainer(w.config.model, encoder, decoder, max_entity_id=w.data.max_entity_id)
    return TinyRN(encoder, decoder, trainer), inserted


@contextlib.contextmanager
def one_thread():
    """torch on one thread for the block: the upstream's LSTM steps take 0.1 s on one
    thread and seconds on two when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def batch_loss(model: TinyRN, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, class probabilities [B, classes]) of the upstream's Trainer.batchLoss on the
    world's batch, with the random stream (dropout, entity-embedding permutation) reset."""
    torch.manual_seed(seed)
    with one_thread():
        _, loss, confidences = model.trainer.batchLoss(world().batch.clone())
    return loss, confidences
