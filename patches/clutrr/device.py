"""Runtime fixes that let clutrr-baselines' RN path run on a GPU, each applied to the
imported upstream module (never to a file) by ``patches.clutrr.upstream()``. On the CPU
they compute exactly what the upstream computes; each has a test in
tests/patches/test_clutrr.py that fails without it.
"""
import torch
from torch.nn.utils import rnn

UNKNOWN_WORD = "<s>"  # the upstream's word for an id outside the vocabulary


def pack_padded_sequence(input: torch.Tensor, lengths: torch.Tensor, batch_first: bool = False,
                         enforce_sorted: bool = True) -> rnn.PackedSequence:
    """torch's pack_padded_sequence for codes/baselines/lstm/basic.py, handed ``lengths``
    (int64 [B], on any device) on the CPU: SimpleEncoder.forward moves them to the data's
    device, which torch refuses on CUDA ("'lengths' argument should be a 1D CPU int64
    tensor"). ``input``: [B, T, *] (``batch_first``) or [T, B, *], as torch's."""
    return rnn.pack_padded_sequence(input, lengths.cpu(), batch_first=batch_first, enforce_sorted=enforce_sorted)


def vocabulary(generator, target: bool) -> dict:
    """The id -> word mapping the upstream's Generator reads: the relations' for ``target``."""
    return generator.data.target_id2word if target else generator.data.id2word


def convert_mat_to_text(self, tensor, target: bool = False) -> list:
    """Generator._convert_mat_to_text with one device-to-host copy per tensor: a [B, L]
    tensor's ids are read with one ``.tolist()`` (the upstream calls int() twice on every
    token, each a synchronisation on CUDA). Same [B][L] words (UNKNOWN_WORD for an id
    outside the vocabulary); a list of lists is read id by id, once each; a flat list goes
    to _convert_list_to_text, as in the upstream."""
    if type(tensor) != list:
        assert tensor.dim() == 2
        rows = tensor.tolist()
    elif type(tensor[0]) != list:
        return self._convert_list_to_text(tensor, target=target)
    else:
        rows = tensor
    id2word = vocabulary(self, target)
    return [[id2word.get(int(w), UNKNOWN_WORD) for w in row] for row in rows]


def convert_list_to_text(self, tlist: list, target: bool = False) -> list:
    """Generator._convert_list_to_text reading each id once (the upstream reads it twice, a
    synchronisation each for a tensor on CUDA). Same output: ``[word]`` per known id, the
    bare UNKNOWN_WORD (not in a list) per unknown one."""
    id2word = vocabulary(self, target)
    ids = [int(w) for w in tlist]
    return [[id2word[i]] if i in id2word else UNKNOWN_WORD for i in ids]

