"""Scenes recorded from the upstream generator, rendered with its conventions."""
import numpy as np
import pytest

from patches import relational_networks
from runners.sort_of_clevr_robustness import furthest_answer
from runners.sort_of_clevr_scenes import SortOfClevr, seeded_streams

SUBTYPE_FURTHEST, SUBTYPE_COUNT = 9, 10


@pytest.fixture(scope="module")
def generator():
    return SortOfClevr(relational_networks.checkout())


def built(generator, n, seed, clutter=False):
    rng = np.random.default_rng(seed) if clutter else None
    with seeded_streams(seed):
        return [generator.build(rng) for _ in range(n)]


def test_a_recorded_scene_renders_to_the_generators_image_bit_for_bit(generator):
    for clutter in (False, True):
        for (img, _, _), scene in built(generator, 50, seed=3, clutter=clutter):
            assert len(scene.objects) == 6 and len(scene.background) == (5 if clutter else 0)
            assert np.array_equal(generator.render(scene) / 255.0, img)


def test_recorded_objects_give_the_generators_own_answers(generator):
    """The recorded positions and shapes are those build_dataset reasons about: its
    Furthest answers for red and its Count answers follow from them."""
    checked = 0
    for (_, (questions, answers), _), scene in built(generator, 200, seed=4):
        shapes = [o.shape for o in scene.objects]
        for question, answer in zip(questions, answers):
            color = int(np.argmax(question[:6]))
            if question[SUBTYPE_FURTHEST] and color == 0:
                assert furthest_answer(scene.positions(), shapes) == answer
                checked += 1
            if question[SUBTYPE_COUNT]:
                assert shapes.count(shapes[color]) + 3 == answer  # answers 4..9 are counts 1..6
    assert checked > 50
    assert [o.color_id for o in scene.objects] == [0, 1, 2, 3, 4, 5]


def test_clutter_lies_behind_the_same_objects_and_questions(generator):
    clean, cluttered = built(generator, 20, seed=5), built(generator, 20, seed=5, clutter=True)
    for ((img, rel, norel), scene), ((img_c, rel_c, norel_c), scene_c) in zip(clean, cluttered):
        assert scene_c.objects == scene.objects
        assert np.array_equal(rel_c[0], rel[0]) and rel_c[1] == rel[1] and norel_c[1] == norel[1]
        assert not np.array_equal(img_c, img)
        objects_only = generator.render(scene)
        drawn = (objects_only != 255).any(axis=2)  # object pixels (no object colour is white)
        assert np.array_equal(img_c[drawn], img[drawn])


def test_centres_from_border_keeps_every_centre_15_px_from_the_border(generator):
    with generator.centres_from_border(15):
        positions = np.concatenate([scene.positions() for _, scene in built(generator, 200, seed=6)])
    assert positions.min() == 15 and positions.max() == 59
    positions = np.concatenate([scene.positions() for _, scene in built(generator, 200, seed=6)])
    assert positions.min() < 15 and positions.max() > 59  # and outside the block, the generator's own range
