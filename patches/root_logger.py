"""The root logger as a script starts with, for upstream code run inside this process."""
import contextlib
import logging
from typing import Iterator


@contextlib.contextmanager
def fresh_root_logger() -> Iterator[None]:
    """Within the block the root logger is as a script starts with (no handlers, level
    WARNING), so an upstream's ``logging.basicConfig`` takes effect and its handlers do not
    pile up on ours; on exit the handlers added in the block are closed and the previous
    handlers and level come back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
