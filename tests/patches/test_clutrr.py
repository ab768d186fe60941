"""The runtime shims that run clutrr-baselines' RN path here (patches.clutrr): each one is
needed (the upstream fails without it) and does what the upstream expects; and the config
of one run (patches.clutrr.run_config)."""
import json
import logging
import os
import zipfile

import nltk
import numpy as np
import pandas as pd
import pytest
import torch

from patches import vendor
from patches.clutrr import NAME, captured_output, compat, shims, upstream
from patches.clutrr.run_config import build_config
from patches.clutrr.stubs import MetricRecorder
from patches.clutrr.torch_geometric import Batch, Data
from tests import clutrr_world

# an upstream module that imports each stand-in unconditionally
IMPORTED_BY = {
    "comet_ml": "codes.app.main",
    "pytorch_pretrained_bert": "codes.utils.data",
    "bert_serving": "codes.utils.bert_utils",
    "sacremoses": "codes.utils.bert_utils",
    "torch_geometric": "codes.utils.data",
}


@pytest.fixture(scope="module")
def checkout():
    return vendor.checkout(NAME)


@pytest.fixture(scope="module")
def root():
    return clutrr_world.tiny_data()[0]


def test_every_stand_in_is_listed():
    assert {name.split(".")[0] for name in shims()} == set(IMPORTED_BY)


@pytest.mark.parametrize("missing", sorted(IMPORTED_BY))
def test_each_stand_in_is_needed(checkout, missing):
    module = IMPORTED_BY[missing]
    others = {name: stub for name, stub in shims().items() if name.split(".")[0] != missing}
    with compat.numpy_int_alias(), captured_output(None):
        with vendor.isolated(checkout, others), pytest.raises(ModuleNotFoundError, match=missing):
            __import__(module)
        with vendor.isolated(checkout, shims()):
            __import__(module)


def test_bert_stand_ins_refuse_to_work():
    bert = shims()["pytorch_pretrained_bert.tokenization"].BertTokenizer
    with pytest.raises(NotImplementedError, match="BERT baselines"):
        bert.from_pretrained("bert-base-uncased")


def test_metric_recorder_knows_the_context():
    recorder = MetricRecorder(api_key=None)
    recorder.log_metric("loss", 1, step=0)
    with recorder.test():
        recorder.log_metric("1.2_test.csv_accuracy", 0.5, step=3)
    assert recorder.metrics == [(None, "loss", 0, 1.0), ("test", "1.2_test.csv_accuracy", 3, 0.5)]


def test_geometric_batch_merges_graphs_as_pytorch_geometric():
    first = Data(x=torch.arange(3).unsqueeze(1), edge_index=torch.tensor([[0, 1], [1, 2]]),
                 edge_attr=torch.tensor([[4], [5]]), y=torch.tensor([7]))
    second = Data(x=torch.arange(2).unsqueeze(1), edge_index=torch.tensor([[0], [1]]),
                  edge_attr=torch.tensor([[6]]), y=torch.tensor([8]))
    batch = Batch.from_data_list([first, second])
    assert batch.x.flatten().tolist() == [0, 1, 2, 0, 1]
    assert batch.edge_index.tolist() == [[0, 1, 3], [1, 2, 4]]  # offset by the nodes before
    assert batch.edge_attr.flatten().tolist() == [4, 5, 6] and batch.y.tolist() == [7, 8]
    assert batch.batch.tolist() == [0, 0, 0, 1, 1] and batch.num_graphs == 2
    assert batch.to("cpu") is batch and batch.num_nodes == 5


def test_numpy_int_alias_is_needed_and_temporary(checkout):
    with vendor.isolated(checkout, shims()), pytest.raises(AttributeError, match="int"):
        __import__("codes.utils.util")
    with vendor.isolated(checkout, shims()), compat.numpy_int_alias():
        assert __import__("codes.utils.util", fromlist=["_"]).NP_INT_DATATYPE is int
    assert "int" not in np.__dict__


def test_yaml_load_without_loader(root):
    with upstream(root, fixes=False) as modules, pytest.raises(TypeError, match="Loader"):
        modules.config.get_base_config("rn")
    with upstream(root) as modules:
        config = modules.config.get_base_config("rn")
    assert config.model.encoder.name == "codes.baselines.relation.relation_nets.RelationNetworkEncoder"


def test_test_tasks_supplied_from_the_archive_args():
    folder = clutrr_world.dataset_dir()
    with open(folder / "config.json") as handle:
        assert json.load(handle)["test_tasks"] == {}  # what the upstream would assert against
    with open(folder / "config.json") as handle:
        tasks = compat.json_supplying_test_tasks().load(handle)["test_tasks"]
    assert tasks == {f"1.{k}": f"1.{k}_test.csv" for k in range(2, 11)}
    assert sorted(tasks.values()) == sorted(p.name for p in folder.glob("*_test.csv"))
    with zipfile.ZipFile(clutrr_world.shared_zip()) as archive:  # the file itself is untouched
        assert (folder / "config.json").read_bytes() == archive.read("config.json")


def test_read_csv_with_object_columns(root):
    test_file = str(root / "data" / clutrr_world.tiny_data()[1] / "1.2_test.csv")
    config = clutrr_world.world().config
    with upstream(root) as modules:
        data = modules.data.DataUtility(config)
        frame = data._check_data(modules.data.pd.read_csv(test_file, comment="#"))
        processed, _ = data.process_entities(frame)
        assert isinstance(processed.at[0, "query"], tuple)
        modules.data.pd = pd  # pandas 3 as is: text columns are str
        frame = data._check_data(modules.data.pd.read_csv(test_file, comment="#"))
        with pytest.raises(ValueError, match="equal len"):
            data.process_entities(frame)


def test_tokenizers_need_no_download(root, monkeypatch):
    monkeypatch.setattr(nltk.data, "path", [])  # as on a machine without nltk_data
    with upstream(root, fixes=False) as modules, pytest.raises(LookupError, match="punkt"):
        modules.data.sent_tokenize("[A] came. [B] left.")
    sent_tokenize, word_tokenize = compat.offline_tokenizers()
    story = "@ent0's mom, @ent1, was very ill. @ent0 couldn't visit at 5 p.m. on Sunday."
    # punkt's English model knows "ill." and "p.m." as abbreviations: one sentence, as here
    assert sent_tokenize(story) == [story]
    assert word_tokenize("@ent0's sister, @ent1, came.") == ["@", "ent0", "'s", "sister", ",", "@", "ent1", ",", "came", "."]
    assert sent_tokenize("@ent0 is tall. @ent1 is not.") == ["@ent0 is tall.", "@ent1 is not."]


def test_tokenizers_split_every_story_into_at_most_13_sentences():
    sent_tokenize, _ = compat.offline_tokenizers()
    counts = [len(sent_tokenize(story)) for path in sorted(clutrr_world.dataset_dir().glob("*.csv"))
              for story in pd.read_csv(path, dtype=object)["story"]]
    assert len(counts) == 16131 and min(counts) >= 1 and max(counts) == 13


class Rows:
    """A DataUtility stand-in with only what split_indices reads."""

    def __init__(self, ids):
        self.dataRows = {"train": {i: type("Row", (), {"id": i})() for i in ids}}
        self.train_test_split = 0.8


def test_split_indices_draws_and_splits_as_the_upstream(checkout):
    ids = [f"{i:08x}-story" for i in np.random.default_rng(1).permutation(600)]
    with compat.numpy_int_alias(), vendor.isolated(checkout, shims()), captured_output(None):
        original = __import__("codes.utils.data", fromlist=["_"]).DataUtility.split_indices
    upstream_rows, fast_rows = Rows(ids), Rows(ids)
    np.random.seed(3)
    original(upstream_rows)
    after_upstream = np.random.random()
    np.random.seed(3)
    compat.split_indices(fast_rows)
    assert np.random.random() == after_upstream  # same draws from numpy's global RNG
    assert fast_rows.train_indices == upstream_rows.train_indices and len(fast_rows.train_indices) == 480
    assert fast_rows.val_indices == upstream_rows.val_indices


def test_upstream_block_restores_logging_and_working_directory(root, tmp_path):
    handlers, cwd = list(logging.getLogger().handlers), os.getcwd()
    with upstream(root, output=tmp_path / "upstream.log") as modules:
        assert os.getcwd() == str(root / "work")
        print("to the log")
        assert modules.experiment.json.load is not json.load
        assert modules.data.DataUtility.split_indices is compat.split_indices
    assert logging.getLogger().handlers == handlers and os.getcwd() == cwd
    assert "to the log" in (tmp_path / "upstream.log").read_text()


def test_run_config_is_rn_yaml_with_this_run_s_settings(root, tmp_path):
    run_dir = tmp_path / "run"
    with upstream(root) as modules:
        rn = modules.config.get_base_config("rn")
        config = build_config(modules, "some_data", 7, run_dir, "cuda:1", epochs=3, encoder_dropout=0.5, l2=1e-4)
    assert rn.general.device == "cuda:0" and config.general.device == "cuda:1"  # the upstream picks cpu without a GPU
    assert config.general.seed == 7 and config.general.commit_id == vendor.checkout(NAME).commit
    assert config.dataset.data_path == "some_data" and config.model.num_epochs == 2  # its loop runs 3 epochs
    assert config.model.encoder.dropout == 0.5 and config.model.optimiser.l2_penalty == 1e-4
    assert config.model.encoder.name == rn.model.encoder.name and config.model.batch_size == rn.model.batch_size
    for path in (config.general.base_path, config.model.save_dir, config.log.file_path, config.plot.base_path):
        assert path.startswith(str(run_dir))  # nothing under vendor/
    assert config.log.comet.disabled
