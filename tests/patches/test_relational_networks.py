"""patches.relational_networks: the generator's functions without its script body, the
model as is, and its always-on output dropout switched off on request."""
import random
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from patches import relational_networks, vendor
from runners.sort_of_clevr_data import generate, model_images
from runners.sort_of_clevr_scenes import SortOfClevr

pytestmark = pytest.mark.filterwarnings("ignore:Implicit dimension choice for log_softmax")


@pytest.fixture(scope="module")
def upstream():
    return relational_networks.checkout()


def test_generator_module_defines_the_functions_without_running_the_script(upstream, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    generator = relational_networks.generator_module(upstream)
    assert callable(generator.build_dataset) and callable(generator.center_generate)
    assert (generator.img_size, generator.size, generator.nb_questions, generator.question_size) == (75, 5, 10, 11)
    assert generator.colors[0] == (0, 0, 255)  # red, BGR
    assert not hasattr(generator, "train_datasets") and not hasattr(generator, "test_datasets")
    assert list(tmp_path.iterdir()) == []  # the script would have made ./data and a 1.4 GB pickle
    assert vendor.changes(upstream) == []


class _CapturingPickle(types.ModuleType):
    """Stands in for pickle in the upstream script: keeps what it dumps instead of writing 1.4 GB."""

    def __init__(self):
        super().__init__("pickle")
        self.dumped = None

    def dump(self, obj, file):
        self.dumped = obj


@pytest.mark.slow
def test_generated_splits_are_what_the_upstream_script_generates(upstream, tmp_path, monkeypatch):
    """The upstream script itself (its 10,000 images; the test split comes first) against
    ours with the same seed: same images as main.py feeds them, questions, answers."""
    monkeypatch.chdir(tmp_path)
    capture = _CapturingPickle()
    random.seed(11)
    np.random.seed(11)
    vendor.run_script(upstream, relational_networks.GENERATOR, [], shims={"pickle": capture})
    _, script_test = capture.dumped
    ours = generate(SortOfClevr(upstream), 4, seed=11)
    for i, (img, (rel_q, rel_a), (norel_q, norel_a)) in enumerate(script_test[:4]):
        as_main_py_feeds_it = torch.FloatTensor(1, 3, 75, 75)
        as_main_py_feeds_it.copy_(torch.from_numpy(np.asarray([np.swapaxes(img, 0, 2)])))
        assert torch.equal(model_images(ours.images[i:i + 1]), as_main_py_feeds_it)
        assert np.array_equal(ours.rel_questions[i], np.asarray(rel_q)) and ours.rel_answers[i].tolist() == rel_a
        assert np.array_equal(ours.norel_questions[i], np.asarray(norel_q)) and ours.norel_answers[i].tolist() == norel_a
    assert vendor.changes(upstream) == []


def test_output_dropout_stays_on_in_eval_mode_unless_switched_off(upstream):
    model_module = relational_networks.model_module(upstream)
    torch.manual_seed(0)
    model = model_module.RN(SimpleNamespace(batch_size=2, lr=1e-4, cuda=False)).eval()
    images, questions = torch.rand(2, 3, 75, 75), torch.zeros(2, 11)
    with torch.no_grad():
        assert not torch.equal(model(images, questions), model(images, questions))  # the upstream's behaviour
        with relational_networks.output_dropout_off(model):
            first = model(images, questions)
            assert torch.equal(model(images, questions), first)
        assert not torch.equal(model(images, questions), model(images, questions))
