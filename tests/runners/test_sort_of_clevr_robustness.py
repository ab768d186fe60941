"""The robustness sets: inside the image under every rotation, the Furthest answer kept."""
import numpy as np
import pytest

from patches import relational_networks
from runners import sort_of_clevr_robustness as robustness
from runners.sort_of_clevr_robustness import PAPER_ROTATIONS, furthest_answer, is_easy, rotated
from runners.sort_of_clevr_scenes import SortOfClevr


@pytest.fixture(scope="module")
def generator():
    return SortOfClevr(relational_networks.checkout())


def rotations_of(robustness_set):
    for scene, centre in zip(robustness_set.scenes, robustness_set.centres):
        yield scene, rotated(scene.positions(), centre, PAPER_ROTATIONS)


def test_rotations_are_evenly_spaced_and_start_unrotated():
    turns = rotated(np.array([[40.0, 30.0], [50.0, 30.0]]), np.array([40.0, 30.0]), 4)
    assert turns[:, 1].tolist() == [[50, 30], [40, 40], [30, 30], [40, 20]]
    assert (turns[:, 0] == [40, 30]).all()


def test_the_synthetic_set_has_200_distinct_positions_inside_and_easy_under_720_rotations(generator):
    synthetic = robustness.synthetic_set(generator, 200)
    assert len({tuple(c) for c in synthetic.centres}) == 200
    yellow_shapes = set()
    for scene, turns in rotations_of(synthetic):
        assert (scene.objects[0].x, scene.objects[0].y) == tuple(turns[0, 0])  # rotated about red
        assert generator.inside(turns)
        shapes = [o.shape for o in scene.objects]
        assert {furthest_answer(p, shapes) for p in turns} == {robustness.SHAPE_ANSWER[shapes[5]]}  # yellow
        assert all(is_easy(p) for p in turns)
        yellow_shapes.add(shapes[5])
    assert yellow_shapes == {"r", "c"}
    with pytest.raises(Exception, match="fits at"):
        robustness.synthetic_set(generator, 10_000)


@pytest.mark.slow
def test_the_dataset_set_is_easy_generator_images_kept_inside_under_720_rotations(generator, tmp_path):
    dataset, generated = robustness.dataset_set(generator, 30, tmp_path)
    assert generated > 30 * 50  # easy images with centres 15 px from the border are rare (about 0.2%)
    for scene, turns in rotations_of(dataset):
        positions = scene.positions()
        assert is_easy(positions) and positions.min() >= 15 and positions.max() <= 59
        assert generator.inside(turns)
        shapes = [o.shape for o in scene.objects]
        assert len({furthest_answer(p, shapes) for p in turns}) == 1
    cached, generated_again = robustness.dataset_set(generator, 30, tmp_path)
    assert cached.scenes == dataset.scenes and generated_again == generated


def test_rotation_renders_are_the_distinct_renderings_unrotated_first(generator):
    synthetic = robustness.synthetic_set(generator, 1)
    scene, centre = synthetic.scenes[0], synthetic.centres[0]
    images, answers = robustness.rotation_renders(generator, scene, centre, 72)
    assert np.array_equal(images[0], generator.render(scene))
    assert 1 < len(images) <= 72 and len({image.tobytes() for image in images}) == len(images)
    assert set(answers.tolist()) == {robustness.SHAPE_ANSWER[scene.objects[5].shape]}
