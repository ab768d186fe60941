"""Counting reads of tensor values into Python (a device-to-host copy and a synchronisation
each on CUDA), for tests that hold a "one read per ..." promise on a CPU-only machine."""
import sys
from types import ModuleType

import torch

READS = ("item", "tolist", "__int__", "__index__", "__float__", "__bool__")


def count_reads(monkeypatch, made_by: ModuleType | None = None) -> list:
    """From now on, the name of every read of a tensor's values, in order; with
    ``made_by``, only the reads that module's own code makes."""
    reads = []

    def counted(name, read):
        def reading(tensor, *args, **kwargs):
            if made_by is None or sys._getframe(1).f_globals is vars(made_by):
                reads.append(name)
            return read(tensor, *args, **kwargs)
        return reading

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counted(name, getattr(torch.Tensor, name)))
    return reads
