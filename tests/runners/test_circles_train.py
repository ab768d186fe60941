import math
from dataclasses import replace

import pytest
import torch

from refiners.descent import DescentSettings
from runners import circles_data as dataset
from runners import circles_train
from adapters.circles import ADAPTER
from ported.circles import build_autoencoder
from runners.circles_train import evaluate, to_float, train
from tests.tensor_reads import count_reads

TINY_G, TINY_F = (4, 8, 8, 16), (16, 8, 8)
SRN = DescentSettings("srn", steps=3, inner_lr=0.1, momentum=0.5, hidden=16, embedding=12, pieces=20, seed=0)
CPU = torch.device("cpu")


def autoencoder(refiner):
    """The tiny autoencoder, with ``refiner`` put in unless it is None."""
    model = build_autoencoder(16, 10, TINY_G, TINY_F)
    if refiner is not None:
        ADAPTER.install(model, refiner)
    return model


@pytest.fixture(scope="module")
def data():
    return dataset.generate(seed=5, split="train", size=24)


def test_to_float_moves_uint8_images_to_the_device():
    images = torch.tensor([[[[0, 1]]]], dtype=torch.uint8)
    converted = to_float(images, CPU)
    assert converted.dtype == torch.float32 and converted.device == CPU and converted.tolist() == [[[[0.0, 1.0]]]]


@pytest.mark.parametrize("srn", [None, SRN], ids=["baseline", "srn"])
def test_one_training_step_lowers_the_loss_on_a_fixed_batch(data, srn):
    torch.manual_seed(0)
    model = autoencoder(srn)
    batch = to_float(torch.from_numpy(data.images[:8]), CPU)

    def loss():
        with torch.no_grad():
            return (model(batch)[0] - batch).pow(2).sum().item()

    before = loss()
    train(model, torch.from_numpy(data.images[:8]), epochs=1, batch_size=8, lr=1e-3,
          generator=torch.Generator().manual_seed(0))
    assert loss() < before


def test_training_is_deterministic_and_follows_the_refiners_schedule(data):
    histories, models, steps = [], [], []
    for _ in range(2):
        torch.manual_seed(0)
        model = autoencoder(replace(SRN, schedule=[[0, 1], [2, 2]]))
        model.refiner.register_forward_hook(lambda refiner, inputs, output: steps.append(refiner.steps))
        histories.append(train(model, torch.from_numpy(data.images), epochs=2, batch_size=10, lr=1e-3,
                               generator=torch.Generator().manual_seed(1)))
        models.append(model)
    assert histories[0] == histories[1] and len(histories[0]) == 2
    assert steps == [1, 1, 2, 2] * 2  # 2 batches per epoch: the schedule's step counts at training steps 0..3
    assert models[0].refiner.steps == 2 and models[0].refiner.inner_losses.shape == (2,)


def test_without_a_schedule_the_refiner_keeps_its_own_steps(data):
    torch.manual_seed(0)
    model = autoencoder(SRN)
    train(model, torch.from_numpy(data.images[:8]), epochs=2, batch_size=8, lr=1e-3,
          generator=torch.Generator().manual_seed(0))
    assert model.refiner.steps == SRN.steps and model.refiner.inner_losses.shape == (SRN.steps,)


def test_training_reads_the_loss_once_per_epoch_into_the_python_float_history(data, monkeypatch):
    """One read of the device per epoch, and the history is what summing each step's loss
    as a Python float (float32 values added in float64) gives, bit for bit."""
    steps, step = [], circles_train.train_step

    def recorded_step(*args):
        steps.append(step(*args))
        return steps[-1]

    monkeypatch.setattr(circles_train, "train_step", recorded_step)
    reads = count_reads(monkeypatch, made_by=circles_train)
    torch.manual_seed(0)
    model = autoencoder(SRN)
    history = train(model, torch.from_numpy(data.images), epochs=2, batch_size=4, lr=1e-3,
                    generator=torch.Generator().manual_seed(2))
    assert len(reads) <= 2  # one per epoch at most (today: two per step)
    expected = []
    for epoch in (steps[:6], steps[6:]):  # 6 batches of 4 per epoch
        total = 0.0
        for loss in epoch:
            total += loss.item()
        expected.append(total / 24)
    assert len(steps) == 12 and history == expected


def test_evaluate_reports_error_and_decomposition_per_count(data):
    torch.manual_seed(0)
    model = autoencoder(None)
    metrics = evaluate(model, data, batch_size=10)
    images = to_float(torch.from_numpy(data.images), CPU)
    with torch.no_grad():
        expected = (model.eval()(images)[0] - images).pow(2).sum(dim=(1, 2, 3)).mean().item()
    assert metrics["reconstruction_error"] == pytest.approx(expected, rel=1e-5)
    for n in range(11):
        rate = metrics[f"decomposed_{n}"]
        assert math.isnan(rate) if (data.counts == n).sum() == 0 else 0 <= rate <= 1
    assert 0 <= metrics["decomposed_all"] <= 1
