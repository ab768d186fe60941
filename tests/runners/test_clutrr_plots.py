"""runners/clutrr_plots.py: the accuracy-by-k figure from per-seed summaries, saved as PNG."""
import numpy as np

from runners import clutrr_plots


def summaries(seeds: int) -> list[dict]:
    rng = np.random.default_rng(seeds)
    return [{f"acc_k{k}": float(rng.uniform()) for k in range(2, 11)} for _ in range(seeds)]


def test_the_figure_is_written_for_one_seed_and_for_several(tmp_path):
    runs = {"RN": summaries(1), "RN + SRN": summaries(2)}
    path = clutrr_plots.accuracy_by_k(runs, tmp_path / "accuracy_by_k.png")
    assert path == tmp_path / "accuracy_by_k.png" and path.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accuracy_by_k.png"]  # no temporary left
