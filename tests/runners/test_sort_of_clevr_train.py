"""Our training loop is the upstream main.py: run main.py itself on a tiny pickle and
compare its per-epoch log and its weights with ours, for the same seeds."""
import csv
import pickle
import random
from types import SimpleNamespace

import pytest
import torch

from refiners.descent import DescentSettings
from patches import relational_networks, vendor
from runners.common.errors import UsageError
from runners.sort_of_clevr_data import generate
from runners.sort_of_clevr_scenes import SortOfClevr, seeded_streams
from runners.sort_of_clevr_train import MainLoop, build_model, check_sizes, fit

pytestmark = pytest.mark.filterwarnings("ignore:Implicit dimension choice for log_softmax")

BATCH, EPOCHS, MODEL_SEED, SHUFFLE_SEED = 8, 2, 3, 7
TRAIN_SEED, TEST_SEED = 21, 22
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    """Batches of 8 gain nothing from a second thread, and lose a lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def upstream():
    return relational_networks.checkout()


def upstream_pickle(generator, path):
    """The upstream's data format: (train, test) lists of (img float64, relations, norelations)."""
    splits = []
    for n, seed in ((4, TRAIN_SEED), (2, TEST_SEED)):
        with seeded_streams(seed):
            splits.append([generator.build()[0] for _ in range(n)])
    path.parent.mkdir()
    with open(path, "wb") as f:
        pickle.dump(tuple(splits), f)


@pytest.mark.slow
def test_main_loop_reproduces_the_upstream_main_py(upstream, tmp_path, monkeypatch):
    generator = SortOfClevr(upstream)
    upstream_pickle(generator, tmp_path / "data" / "sort-of-clevr.pickle")
    monkeypatch.chdir(tmp_path)
    random.seed(SHUFFLE_SEED)  # main.py shuffles with python's random, which it never seeds
    vendor.run_script(upstream, "main.py",
                      ["--epochs", str(EPOCHS), "--batch-size", str(BATCH), "--seed", str(MODEL_SEED), "--no-cuda"])
    with open(tmp_path / f"RN_{MODEL_SEED}_log.csv") as f:
        upstream_log = [{key: float(value) for key, value in row.items()} for row in csv.DictReader(f)]
    upstream_weights = torch.load(tmp_path / "model" / f"epoch_RN_{EPOCHS:02d}.pth")
    assert vendor.changes(upstream) == []

    train, test = generate(generator, 4, TRAIN_SEED), generate(generator, 2, TEST_SEED)
    random.seed(SHUFFLE_SEED)
    torch.manual_seed(MODEL_SEED)
    model, _ = build_model(relational_networks.model_module(upstream), BATCH, 1e-4, CPU)
    loop = MainLoop(model, train, BATCH, CPU)
    ours = []
    for epoch in range(1, EPOCHS + 1):
        train_rel, train_norel = loop.train_epoch()
        test_rel, test_norel = loop.test(test)
        ours.append({"epoch": epoch, "train_acc_rel": train_rel, "train_acc_norel": train_norel,
                     "test_acc_rel": test_rel, "test_acc_norel": test_norel})
    assert ours == upstream_log
    assert upstream_weights.keys() == model.state_dict().keys()
    assert all(torch.equal(upstream_weights[key], value) for key, value in model.state_dict().items())


def test_fit_keeps_the_best_validation_epoch(upstream, tmp_path):
    generator = SortOfClevr(upstream)
    train, validation = generate(generator, 2, TRAIN_SEED), generate(generator, 1, TEST_SEED)
    torch.manual_seed(0)
    random.seed(0)
    model, _ = build_model(relational_networks.model_module(upstream), BATCH, 1e-3, CPU)
    checkpoint = tmp_path / "checkpoints" / "RN-seed0.pt"
    history, best_epoch = fit(MainLoop(model, train, BATCH, CPU), validation, 3, checkpoint)
    scores = [(entry["validation_rel"] + entry["validation_norel"]) / 2 for entry in history]
    assert [entry["epoch"] for entry in history] == [1, 2, 3]
    assert best_epoch == 1 + scores.index(max(scores))
    saved = torch.load(checkpoint)
    assert all(torch.equal(saved[key], value) for key, value in model.state_dict().items())


def test_the_srn_is_seeded_by_its_settings_and_leaves_the_rns_weights_alone(upstream):
    module = relational_networks.model_module(upstream)
    refiner = DescentSettings("srn", steps=1, inner_lr=0.1, hidden=8, embedding=4, seed=5)
    torch.manual_seed(0)
    baseline, none = build_model(module, BATCH, 1e-4, CPU)
    models = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        models.append(build_model(module, BATCH, 1e-4, CPU, refiner))
    (first, first_srn), (second, second_srn) = models
    assert none is None and first.refiner is first_srn
    assert all(torch.equal(a, b) for a, b in zip(first_srn.state_dict().values(), second_srn.state_dict().values()))
    rn_weights = {key: value for key, value in first.state_dict().items() if not key.startswith("refiner.")}
    assert all(torch.equal(value, baseline.state_dict()[key]) for key, value in rn_weights.items())
    assert len(first.optimizer.param_groups) == 2


def test_splits_too_small_for_one_full_batch_are_a_usage_error():
    """A batch of 64 questions needs 7 images of 10 questions each."""
    check_sizes(SimpleNamespace(batch_size=64, train_images=7, validation_images=7), questions_per_image=10)
    with pytest.raises(UsageError, match="--images must be at least 7"):
        check_sizes(SimpleNamespace(batch_size=64, train_images=6, validation_images=7), questions_per_image=10)
    with pytest.raises(UsageError, match="validation_images must be at least 7"):
        check_sizes(SimpleNamespace(batch_size=64, train_images=7, validation_images=6), questions_per_image=10)
