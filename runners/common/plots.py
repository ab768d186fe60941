"""The one plotting API of the runners: matplotlib's object-oriented Figure (no pyplot, no
global state), saved atomically."""
from pathlib import Path

from matplotlib.figure import Figure

from runners.common.atomic import replaced_atomically


def save_figure(figure: Figure, path: Path, dpi: int = 120) -> Path:
    """Write ``figure`` to ``path`` (format from its suffix) atomically; returns ``path``."""
    path = Path(path)
    with replaced_atomically(path) as temporary:
        figure.savefig(temporary, dpi=dpi, format=path.suffix.lstrip("."))
    return path
