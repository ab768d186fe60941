"""The runtime shims that run clutrr-baselines' RN path here (patches.clutrr): each one is
needed (the upstream fails without it, or synchronises a GPU per token) and does what the
upstream expects; and the config of one run (patches.clutrr.run_config)."""
import json
import logging
import os
import zipfile

import nltk
import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn.utils import rnn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

from patches import vendor
from patches.clutrr import NAME, captured_output, compat, device, shims, upstream
from patches.clutrr.run_config import build_config
from patches.clutrr.stubs import MetricRecorder
from patches.clutrr.torch_geometric import Batch, Data
from tests import clutrr_world
from tests.tensor_reads import count_reads

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


CUDA, CPU = torch.device("cuda:0"), torch.device("cpu")


class OnPretendCuda(torch.Tensor):
    """A CPU tensor that PretendCuda presents as one on cuda:0."""

    __torch_function__ = torch._C._disabled_torch_function_impl


def device_type(value) -> str | None:
    """"cuda" or "cpu" for a device or its name ("cuda:0", "cpu"); None for anything else."""
    if isinstance(value, torch.device):
        return value.type
    name = value.split(":")[0] if isinstance(value, str) else None
    return name if name in ("cuda", "cpu") else None


class PretendCuda(TorchFunctionMode):
    """cuda:0 on a machine without a GPU, for the block: every tensor torch is asked to put
    there (``.to("cuda:0")``, ``device="cuda:0"``) or computes from one there is an
    OnPretendCuda, computed on the CPU, whose ``device`` is cuda:0; ``.cpu()`` and
    ``.to("cpu")`` give a plain CPU tensor. torch's packing kernel (what
    pack_padded_sequence calls) acts as on CUDA: it refuses lengths on cuda:0 with CUDA's
    error and returns its batch sizes on the CPU. No other device rule is checked (a
    module's parameters, which Module.to keeps as Parameters, stay CPU tensors).
    ``lengths_devices``: the device of the lengths the packing kernel received, per call."""

    def __init__(self):
        super().__init__()
        self.lengths_devices = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func == torch.Tensor.device.__get__ and isinstance(args[0], OnPretendCuda):
            return CUDA
        if func is torch._pack_padded_sequence:
            return self.pack(*args, **kwargs)
        values, _ = tree_flatten((args, kwargs))
        types_named = {device_type(value) for value in values}
        to_cuda = "cuda" in types_named
        to_cpu = func is torch.Tensor.cpu or (func is torch.Tensor.to and "cpu" in types_named)
        on_cuda = to_cuda or (not to_cpu and any(isinstance(value, OnPretendCuda) for value in values))
        args, kwargs = tree_map(lambda value: CPU if device_type(value) == "cuda" else value, (args, kwargs))
        kind = OnPretendCuda if on_cuda else torch.Tensor
        return tree_map(lambda value: value.as_subclass(kind) if isinstance(value, torch.Tensor) else value,
                        func(*args, **kwargs))

    def pack(self, input, lengths, batch_first):
        """torch._pack_padded_sequence as on CUDA: lengths int64 [B] on the CPU; returns
        (data on the input's device, batch sizes on the CPU)."""
        self.lengths_devices.append(CUDA if isinstance(lengths, OnPretendCuda) else lengths.device)
        if isinstance(lengths, OnPretendCuda):
            raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got 1D {CUDA} Long tensor")
        data, batch_sizes = torch._pack_padded_sequence(input, lengths, batch_first)
        return data.as_subclass(type(input)), batch_sizes.as_subclass(torch.Tensor)


def loss_on_pretend_cuda(mode: PretendCuda) -> torch.Tensor:
    """The loss of clutrr_world.batch_loss, the batch moved to cuda:0 under ``mode`` as
    run_experiment moves it (Batch.to_device)."""
    model, _ = clutrr_world.build_model()
    with mode:
        batch = clutrr_world.world().batch.clone()
        batch.to_device(CUDA)
        torch.manual_seed(0)
        with clutrr_world.one_thread():
            return model.trainer.batchLoss(batch)[1]


def test_packing_gets_the_lengths_on_the_cpu_on_cuda(monkeypatch):
    """The upstream's RN forward (Trainer.batchLoss) on a batch on cuda:0, pretended on this
    CPU-only machine (PretendCuda): SimpleEncoder moves the sorted lengths to the embedded
    data's device, cuda:0, where torch's pack_padded_sequence refuses them as on a GPU;
    patched, torch receives them on the CPU, for the sentences and for the query, and the
    loss is the CPU's, bit for bit."""
    reference, _ = clutrr_world.batch_loss(clutrr_world.build_model()[0])
    patched = PretendCuda()
    loss = loss_on_pretend_cuda(patched)
    assert isinstance(loss, OnPretendCuda)  # computed "on cuda:0"
    assert patched.lengths_devices == [CPU, CPU]
    assert torch.equal(loss.as_subclass(torch.Tensor), reference)
    # the name bound as the upstream binds it (from torch.nn.utils.rnn import pack_padded_sequence)
    monkeypatch.setattr(clutrr_world.world().modules.basic, "pack_padded_sequence", rnn.pack_padded_sequence)
    unpatched = PretendCuda()
    with pytest.raises(RuntimeError, match="should be a 1D CPU int64 tensor"):
        loss_on_pretend_cuda(unpatched)
    assert unpatched.lengths_devices == [CUDA]


def texts(generator, batch, predictions) -> tuple:
    """(input, true and predicted relation) words of Generator.process_batch."""
    batch = generator.process_batch(batch, predictions)
    return batch.true_inp, batch.true_outp, batch.pred_outp


def test_text_conversion_reads_each_tensor_once_into_the_upstream_s_words(root, monkeypatch):
    """Generator.process_batch on a real batch and its predictions (some ids made unknown):
    the upstream reads every token of the input and the target with int(), twice (on CUDA, a
    synchronisation each); patched, one read per tensor (the predictions, which the upstream
    reads with .tolist() itself, the input and the target), and the same words."""
    w = clutrr_world.world()
    model, _ = clutrr_world.build_model()
    batch = w.batch.clone()
    with clutrr_world.one_thread():
        predictions = model.trainer.batchLoss(batch.clone())[0]
    batch.inp[0, :3] = len(w.data.id2word)  # ids outside the vocabularies: "<s>"
    predictions[1] = len(w.data.target_id2word)
    with upstream(root, fixes=False) as original:
        upstream_generator = original.generator.Generator(w.data, model, w.config, trainer=model.trainer)
    patched_generator = w.modules.generator.Generator(w.data, model, w.config, trainer=model.trainer)
    reads = count_reads(monkeypatch)
    expected = texts(upstream_generator, batch.clone(), predictions)
    assert len(reads) > batch.inp.numel()
    reads.clear()
    assert texts(patched_generator, batch.clone(), predictions) == expected
    assert reads == ["tolist"] * 3
    true_inp, true_outp, pred_outp = expected
    assert true_inp[0][:3] == [device.UNKNOWN_WORD] * 3 and pred_outp[1] == device.UNKNOWN_WORD
    assert pred_outp[0] == [w.data.target_id2word[int(predictions[0])]] and len(true_outp[0]) == 1
