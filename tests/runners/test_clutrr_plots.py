"""runners/clutrr_plots.py: both figures from per-seed summaries, saved as PNG."""
import numpy as np

from runners import clutrr_plots


def summaries(seeds: int, epochs: int = 3) -> list[dict]:
    rng = np.random.default_rng(seeds)
    return [{**{f"acc_k{k}": float(rng.uniform()) for k in range(2, 11)},
             "curves": {"mean_234": rng.uniform(size=epochs).tolist()}} for _ in range(seeds)]


def test_figures_are_written_for_one_seed_and_for_several(tmp_path):
    runs = {"RN": summaries(1), "RN + SRN": summaries(2)}
    for draw, name in ((clutrr_plots.accuracy_by_k, "accuracy_by_k.png"), (clutrr_plots.learning_curves, "curves.png")):
        path = draw(runs, tmp_path / name)
        assert path == tmp_path / name and path.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accuracy_by_k.png", "curves.png"]  # no temporary left
