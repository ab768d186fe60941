from matplotlib.figure import Figure

from runners.common.plots import save_figure


def test_a_figure_is_saved_whole_in_the_format_of_its_suffix(tmp_path):
    figure = Figure()
    figure.subplots().plot([0, 1], [1, 0])
    path = save_figure(figure, tmp_path / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert save_figure(figure, tmp_path / "curve.pdf").read_bytes()[:4] == b"%PDF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.pdf", "curve.png"]
