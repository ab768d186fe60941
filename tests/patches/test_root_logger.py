import logging

from patches.root_logger import fresh_root_logger


def test_inside_the_root_logger_is_a_scripts_and_ours_comes_back():
    root = logging.getLogger()
    ours = logging.NullHandler()
    root.addHandler(ours)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        with fresh_root_logger():
            assert root.handlers == [] and root.level == logging.WARNING
            logging.basicConfig(level=logging.INFO)  # what train.py does: effective only on a fresh logger
            assert len(root.handlers) == 1 and root.level == logging.INFO
            added = root.handlers[0]
        assert ours in root.handlers and added not in root.handlers and root.level == logging.DEBUG
    finally:
        root.removeHandler(ours)
        root.setLevel(level)
