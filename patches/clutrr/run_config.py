"""The upstream's ``config/rn.yaml`` as it runs here: ``build_config`` for one run and
``prepare_dictionary`` for a data folder.

The config differs from rn.yaml only where the caller says so (data folder, epochs,
encoder dropout, l2 penalty, seed) and where rn.yaml cannot run here: the device (rn.yaml
hard-codes ``cuda:0``; here the caller's, e.g. "cpu" or "cuda:1"), the output paths
(``general.base_path`` = the run's folder instead of vendor/) and the commit id (the pin,
instead of asking git in the working directory); metrics go to the comet_ml stand-in only.
"""
import glob
import os
import random
from pathlib import Path

import numpy as np
import torch

from patches.clutrr import upstream

UPSTREAM_CONFIG = "rn"


def build_config(modules, data_name: str, seed: int, run_dir: Path, device: str, epochs: int = 1,
                 encoder_dropout: float = 0.0, l2: float = 0.0):
    """The upstream config (an addict Dict) for one run of ``epochs`` epochs on the data
    folder ``data_name`` with ``seed`` on ``device``, writing under ``run_dir``; from
    rn.yaml through the upstream's own post-processing. ``modules``: those of
    ``patches.clutrr.upstream``."""
    config = modules.config.get_base_config(UPSTREAM_CONFIG)
    config.general.id = UPSTREAM_CONFIG
    config.general.seed = seed
    config.general.base_path = str(run_dir)
    config.general.device = str(device)
    config.general.commit_id = modules.pin
    config.dataset.data_path = data_name
    config.model.num_epochs = epochs - 1  # the upstream's loop runs num_epochs + 1 epochs
    config.model.encoder.dropout = encoder_dropout
    config.model.optimiser.l2_penalty = l2
    config.log.comet.disabled = True
    return modules.config._post_process(config)


def prepare_dictionary(root: Path, data_name: str, log_dir: Path) -> None:
    """dict.json of the data folder ``root/data/data_name``, as the upstream's first run
    would write it, made before any run so that every run takes the same path (the
    upstream draws random numbers while making it). Leaves the random generators as they
    were; the upstream's output goes under ``log_dir``."""
    folder = Path(root) / "data" / data_name
    if (folder / "dict.json").exists():
        return
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        with upstream(root, output=log_dir / "dictionary.log") as modules:
            config = build_config(modules, data_name, 0, log_dir / "dictionary", "cpu")
            config.dataset.train_file = glob.glob(os.path.join(folder, "*_train.csv"))[0]
            config.dataset.test_files = glob.glob(os.path.join(folder, "*_test.csv"))
            modules.data.generate_dictionary(config)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def first_training_batch(modules, config, folder: Path, train_file: str):
    """The upstream's DataUtility of the data folder ``folder`` (dict.json made) and the
    first batch of ``train_file`` (shuffled by the upstream's loader), with the model
    sizes set in ``config`` as run_experiment sets them; returns (data, batch)."""
    config.dataset.train_file = str(Path(folder) / train_file)
    data = modules.data.DataUtility(config)
    data.process_data(str(folder), config.dataset.train_file, load_dictionary=True)
    config.model.vocab_size = len(data.word2id)
    config.model.target_size = len(data.target_word2id)
    config.model.max_nodes = data.num_entity_block
    config.model.max_sent_length = data.max_sent_length
    config.model.classes = data.target_id2word
    return data, next(iter(data.get_dataloader(mode="train")))
