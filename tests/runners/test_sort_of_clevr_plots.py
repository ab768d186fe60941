"""The runner's figures are written whole (PNG), with the Figure API."""
import pytest

from patches import relational_networks
from runners import sort_of_clevr_robustness as robustness
from runners.sort_of_clevr_plots import plot_robustness_examples, plot_validation
from runners.sort_of_clevr_scenes import SortOfClevr

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def generator():
    return SortOfClevr(relational_networks.checkout())


def history(*accuracies):
    return [{"epoch": epoch, "validation_rel": a, "validation_norel": a / 2} for epoch, a in enumerate(accuracies, 1)]


def test_validation_curves_are_a_png(tmp_path):
    runs = {"RN": [{"history": history(40, 50)}, {"history": history(42, 52)}],
            "RN+SRN": [{"history": history(45, 60)}], "empty": []}
    path = plot_validation(runs, tmp_path / "validation.png")
    assert path.read_bytes().startswith(PNG) and list(tmp_path.iterdir()) == [path]


def test_robustness_examples_are_a_png(generator, tmp_path):
    sets = [robustness.synthetic_set(generator, 1), robustness.synthetic_set(generator, 2)]
    path = plot_robustness_examples(generator, sets, 8, tmp_path / "examples.png")
    assert path.read_bytes().startswith(PNG) and list(tmp_path.iterdir()) == [path]
