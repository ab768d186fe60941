"""Splits in memory (uint8, exact) and on disk (cached, checked)."""
import numpy as np
import pytest
import torch

from patches import relational_networks
from runners.common.errors import UsageError
from runners.sort_of_clevr_data import as_uint8, load_split, model_images
from runners.sort_of_clevr_scenes import SortOfClevr, seeded_streams


@pytest.fixture(scope="module")
def generator():
    return SortOfClevr(relational_networks.checkout())


def test_uint8_images_give_main_pys_float32_batches_exactly(generator):
    with seeded_streams(0):
        images = [generator.build(np.random.default_rng(0))[0][0] for _ in range(5)]
    as_main_py_feeds_them = torch.FloatTensor(5, 3, 75, 75)
    as_main_py_feeds_them.copy_(torch.from_numpy(np.asarray([np.swapaxes(img, 0, 2) for img in images])))
    assert torch.equal(model_images(np.stack([as_uint8(img) for img in images])), as_main_py_feeds_them)
    with pytest.raises(RuntimeError, match="1/255"):
        as_uint8(images[0] + 1e-3)


def test_questions_come_in_main_pys_list_order(generator, tmp_path):
    split = load_split(generator, tmp_path, "test", 3, clutter=False)
    questions, answers, image_index = split.questions("rel")
    assert image_index.tolist() == [i for i in range(3) for _ in range(10)]
    assert np.array_equal(questions[12], split.rel_questions[1, 2]) and answers[12] == split.rel_answers[1, 2]


def test_a_split_is_cached_and_leaves_the_callers_random_state_alone(generator, tmp_path):
    state = np.random.get_state()[1].copy()
    first = load_split(generator, tmp_path, "validation", 4, clutter=True)
    assert np.array_equal(np.random.get_state()[1], state)
    (path,) = tmp_path.iterdir()
    assert path.name == "validation-4-seed2-clutter.npz"
    again = load_split(generator, tmp_path, "validation", 4, clutter=True)
    assert all(np.array_equal(getattr(first, f), getattr(again, f)) for f in vars(first))
    assert not np.array_equal(load_split(generator, tmp_path, "validation", 4, clutter=False).images, first.images)


def test_a_corrupt_or_foreign_cache_is_a_usage_error(generator, tmp_path):
    load_split(generator, tmp_path, "test", 2, clutter=False)
    (path,) = tmp_path.iterdir()
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UsageError, match="delete it"):
        load_split(generator, tmp_path, "test", 2, clutter=False)
    np.savez(path, format=np.array(1), images=np.zeros((2, 75, 75, 3), np.uint8))
    with pytest.raises(UsageError, match="delete it"):
        load_split(generator, tmp_path, "test", 2, clutter=False)
