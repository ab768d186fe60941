"""The runner's robustness figure is written whole (PNG), with the Figure API (its curves: tests/runners/common/test_curves.py)."""
import pytest

from patches import relational_networks
from runners import sort_of_clevr_robustness as robustness
from runners.sort_of_clevr_plots import plot_robustness_examples
from runners.sort_of_clevr_scenes import SortOfClevr

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def generator():
    return SortOfClevr(relational_networks.checkout())


def test_robustness_examples_are_a_png(generator, tmp_path):
    sets = [robustness.synthetic_set(generator, 1), robustness.synthetic_set(generator, 2)]
    path = plot_robustness_examples(generator, sets, 8, tmp_path / "examples.png")
    assert path.read_bytes().startswith(PNG) and list(tmp_path.iterdir()) == [path]
