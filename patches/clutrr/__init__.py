"""clutrr-baselines (pinned, unmodified) on today's stack, offline, on CPU or GPU.

``upstream(root, output)`` imports the upstream's RN path in isolation with every shim
installed and yields its modules:

* stub modules (``stubs.py``): ``comet_ml`` (a recorder of logged metrics),
  ``pytorch_pretrained_bert``, ``bert_serving``, ``sacremoses`` — imported unconditionally,
  used only by the BERT baselines or for uploading metrics;
* ``torch_geometric.data`` ``Data``/``Batch`` (``torch_geometric.py``): a minimal stand-in
  for the graphs ``precompute_batches`` builds on the RN path;
* ``compat.py``: ``np.int``; ``yaml.load`` without Loader; NLTK's punkt without downloaded
  data (verified equal to the trained model on the dataset); ``read_csv(dtype=object)``
  for pandas 3; an O(n) ``split_indices`` drawing the same random numbers; the empty
  ``test_tasks`` of the archive's config.json supplied from its ``args``;
* ``device.py``, for a GPU: pack_padded_sequence handed its lengths on the CPU (the
  upstream moves them to the GPU, which torch refuses); the Generator's conversion of
  token ids to words with one device-to-host copy per tensor instead of one per token;
* the upstream resolves data as ``<parent of the working directory>/data/<data_path>``:
  the block runs in ``root/work`` so data lives in ``root/data``, never in vendor/; its
  prints and log records go to ``output`` (a file), and the logging handlers it installs
  are removed afterwards.

The device (rn.yaml hard-codes ``cuda:0``) and every output path (logs, checkpoints) are
set in the config ``run_config.build_config`` makes of rn.yaml.
"""
import contextlib
import os
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Iterator

from patches import vendor
from patches.clutrr import compat
from patches.clutrr import device
from patches.clutrr import torch_geometric
from patches.clutrr.stubs import stub_modules
from patches.root_logger import fresh_root_logger

NAME = "clutrr-baselines"
MODULES = (
    "codes.utils.util",
    "codes.utils.config",
    "codes.utils.data",
    "codes.net.net_registry",
    "codes.net.trainer",
    "codes.baselines.relation.relation_nets",
    "codes.baselines.lstm.basic",
    "codes.net.generator",
    "codes.experiment.experiment",
)


def shims() -> dict:
    """Every stand-in module, by import name."""
    geometric_data = ModuleType("torch_geometric.data")
    geometric_data.Data, geometric_data.Batch = torch_geometric.Data, torch_geometric.Batch
    geometric = ModuleType("torch_geometric")
    geometric.data = geometric_data
    return {**stub_modules(), "torch_geometric": geometric, "torch_geometric.data": geometric_data}


def apply_fixes(modules: SimpleNamespace) -> None:
    """Install the compat and device fixes on freshly imported upstream modules."""
    modules.config.yaml = compat.yaml_with_default_loader()
    modules.data.sent_tokenize, modules.data.word_tokenize = compat.offline_tokenizers()
    modules.data.pd = compat.pandas_reading_objects()
    modules.data.DataUtility.split_indices = compat.split_indices
    modules.experiment.json = compat.json_supplying_test_tasks()
    modules.basic.pack_padded_sequence = device.pack_padded_sequence
    modules.generator.Generator._convert_mat_to_text = device.convert_mat_to_text
    modules.generator.Generator._convert_list_to_text = device.convert_list_to_text


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    path.mkdir(parents=True, exist_ok=True)
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def captured_output(output: Path | None) -> Iterator[None]:
    """The upstream's prints and log records go to ``output`` (appended) when given, under
    a fresh root logger (experiment.py removes the root handlers at import and
    run_experiment installs its own); ours come back afterwards."""
    with contextlib.ExitStack() as stack:
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            stream = stack.enter_context(open(output, "a"))
            stack.enter_context(contextlib.redirect_stdout(stream))
            stack.enter_context(contextlib.redirect_stderr(stream))
        stack.enter_context(fresh_root_logger())
        yield


@contextlib.contextmanager
def upstream(root: Path, output: Path | None = None, fixes: bool = True) -> Iterator[SimpleNamespace]:
    """The upstream's modules (attributes ``util``, ``config``, ``data``, ``net_registry``,
    ``trainer``, ``relation_nets``, ``basic``, ``generator``, ``experiment``; ``pin``: its commit), imported
    with the shims, inside ``root/work`` as working directory. ``fixes=False`` leaves out the
    compat and device fixes applied after import (for tests showing each is needed)."""
    checkout = vendor.checkout(NAME)
    with contextlib.ExitStack() as stack:
        stack.enter_context(captured_output(output))
        stack.enter_context(vendor.isolated(checkout, shims()))
        stack.enter_context(compat.numpy_int_alias())
        stack.enter_context(working_directory(Path(root) / "work"))
        imported = {name.rsplit(".", 1)[-1]: __import__(name, fromlist=["_"]) for name in MODULES}
        modules = SimpleNamespace(**imported, pin=checkout.commit)
        if fixes:
            apply_fixes(modules)
        yield modules
