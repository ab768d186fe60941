from runners.cswm_plots import OFFSET, plot_ranking, ranking_figure


def run(h1: float, mrr: float) -> dict:
    return {f"{key}_{steps}": value / steps for steps in (1, 5, 10) for key, value in (("h1", h1), ("mrr", mrr))}


RUNS = {"baseline": [run(0.1, 0.2), run(0.12, 0.22)], "SRN": [run(0.08, 0.18)], "empty": []}


def test_arms_side_by_side_with_their_seed_counts_and_the_chance_level():
    h1_axis, mrr_axis = ranking_figure(RUNS, "C-SWM on Space Invaders, K=3", chance=(0.001, 0.0075)).axes
    _, labels = h1_axis.get_legend_handles_labels()
    assert sorted(labels) == ["SRN: mean ± std over 1 seed", "baseline: mean ± std over 2 seeds", "chance (0.10 %)"]
    baseline, srn = (container.lines[0] for container in h1_axis.containers)
    assert list(baseline.get_xdata()) == [1 - OFFSET / 2, 5 - OFFSET / 2, 10 - OFFSET / 2]
    assert srn.get_xdata()[0] == 1 + OFFSET / 2 and baseline.get_ydata()[0] == 11.0
    assert mrr_axis.lines[-1].get_ydata()[0] == 0.75  # chance MRR in %


def test_the_plot_is_saved(tmp_path):
    path = plot_ranking(RUNS, tmp_path / "results.png", "title", chance=(0.001, 0.0075))
    assert path.read_bytes()[:4] == b"\x89PNG"
