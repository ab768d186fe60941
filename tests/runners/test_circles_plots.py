import numpy as np
import pytest
import torch

from refiners.descent import DescentSettings
from runners import circles_data as dataset
from runners import circles_plots as plots
from adapters.circles import ADAPTER
from ported.circles import build_autoencoder

SRN = DescentSettings("srn", steps=1, inner_lr=0.1, hidden=8, embedding=12, seed=0)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    baseline, refined = (build_autoencoder(9, 10, (4, 4, 4, 8), (8, 4, 4)) for _ in range(2))
    ADAPTER.install(refined, SRN)
    return {"baseline": baseline.eval(), "SRN": refined.eval()}


def test_moving_circle_moves_the_green_one_past_the_still_red_one():
    images, xs = plots.moving_circle(frames=5)
    assert images.shape == (5, 3, 64, 64) and xs[0] == 7 and xs[-1] == 56 and (np.diff(xs) > 0).all()
    assert (images[:, 0] == images[0, 0]).all() and not (images[:, 1] == images[0, 1]).all()


def test_single_circles_cover_the_grid_in_both_colours():
    images, circles = plots.single_circles(radius=6, step=3)
    assert len(images) == len(circles) == 2 * 18 * 18 and set(circles[:, 3]) == {0, 1}
    np.testing.assert_array_equal(images[5], dataset.render(circles[5][None]))


def test_holding_elements_picks_one_element_per_image(models):
    images, _ = plots.single_circles(radius=6, step=24)
    assert plots.holding_elements(models["SRN"], images, batch_size=3).shape == (len(images), 10)


def test_figures_are_pngs(tmp_path, models):  # the t-SNE figure: tests/runners/test_circles.py, end to end
    data = dataset.generate(seed=0, split="test", size=4)
    plots.decomposition_grid(models["baseline"], data, [0, 1], tmp_path / "grid.png", "baseline")
    plots.responsibility(models, tmp_path / "responsibility.png", frames=3)
    for name in ("grid", "responsibility"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["grid.png", "responsibility.png"]
