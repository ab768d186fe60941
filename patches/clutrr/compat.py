"""Runtime fixes that let clutrr-baselines' RN path run on numpy 2, PyYAML 6, pandas 3 and
NLTK without downloaded data, each applied to the imported upstream module (never to a
file). ``patches.clutrr.upstream()`` applies them all; each has a test in
tests/patches/test_clutrr.py that fails without it.
"""
import contextlib
import json
from types import ModuleType
from typing import Iterator

import numpy as np
import pandas as pd
import yaml
from nltk.tokenize.destructive import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

# The abbreviations of NLTK's trained English punkt model that occur in CLUTRR stories.
# With them, the untrained tokenizer split and tokenised all 16,131 stories and answers of
# data_db9b8f04 exactly as nltk.sent_tokenize / word_tokenize with the punkt_tab model did,
# in a one-time comparison with that model downloaded (it cannot be fetched offline, so no
# test repeats it); without them 24 stories differed ("very ill. [X] ..." and "... they wed.
# [X] ..." are one sentence for punkt, whose word tokens keep "ill." and "wed."), the cases
# tests/patches/test_clutrr.py holds.
PUNKT_ABBREVIATIONS = frozenset({"ill", "wed", "p.m"})


@contextlib.contextmanager
def numpy_int_alias() -> Iterator[None]:
    """``np.int`` (removed in numpy 1.24; codes/utils/util.py reads it at import) as the
    builtin int it aliased, for the duration of the block."""
    had = "int" in np.__dict__
    np.int = int
    try:
        yield
    finally:
        if not had:
            del np.int


def yaml_with_default_loader() -> ModuleType:
    """``yaml`` for codes/utils/config.py: ``yaml.load(stream)`` without a Loader (a
    TypeError since PyYAML 6) reads with SafeLoader; the configs are plain YAML."""
    module = ModuleType("yaml")
    module.__dict__.update(yaml.__dict__)
    module.load = lambda stream, Loader=yaml.SafeLoader: yaml.load(stream, Loader=Loader)
    return module


def pandas_reading_objects() -> ModuleType:
    """``pandas`` for codes/utils/data.py: ``read_csv`` with ``dtype=object``. pandas 3
    reads text columns as ``str``, into which ``data.at[i, 'query'] = tuple(...)`` cannot
    store a tuple; as object columns (pandas 2's default for text) it can."""
    module = ModuleType("pandas")
    module.__dict__.update(pd.__dict__)
    module.read_csv = lambda *args, dtype=object, **kwargs: pd.read_csv(*args, dtype=dtype, **kwargs)
    return module


def punkt_sentence_tokenizer() -> PunktSentenceTokenizer:
    parameters = PunktParameters()
    parameters.abbrev_types = set(PUNKT_ABBREVIATIONS)
    return PunktSentenceTokenizer(parameters)


def offline_tokenizers() -> tuple:
    """(sent_tokenize, word_tokenize) that need no NLTK data download: NLTK's punkt
    algorithm, untrained but for PUNKT_ABBREVIATIONS, and its default word tokenizer,
    composed as nltk.word_tokenize composes them."""
    sentences = punkt_sentence_tokenizer()
    words = NLTKWordTokenizer()

    def sent_tokenize(text: str, language: str = "english") -> list[str]:
        return sentences.tokenize(text)

    def word_tokenize(text: str, language: str = "english", preserve_line: bool = False) -> list[str]:
        parts = [text] if preserve_line else sentences.tokenize(text)
        return [token for part in parts for token in words.tokenize(part)]

    return sent_tokenize, word_tokenize


def split_indices(self) -> None:
    """DataUtility.split_indices in O(n): the upstream rebuilds ``set(mask_i)`` for every
    row (6.5 minutes on the 15,083-row train file). Same draw from numpy's global RNG, same
    train/validation lists in the same order."""
    indices = list(self.dataRows["train"].keys())
    mask_i = np.random.choice(indices, int(len(indices) * self.train_test_split), replace=False)
    chosen = set(mask_i)
    self.val_indices = [self.dataRows["train"][i].id for i in indices if i not in chosen]
    self.train_indices = [self.dataRows["train"][i].id for i in indices if i in chosen]


def test_tasks_from_args(config: dict) -> dict:
    """The ``test_tasks`` mapping (task -> file) a CLUTRR config.json should carry, from the
    generator arguments it does carry ("test_tasks": "1.2,1.3,..." in ``args``)."""
    listed = {args.get("test_tasks") for args in config.get("args", {}).values() if isinstance(args, dict)}
    listed.discard(None)
    if len(listed) != 1:
        return {}
    return {task: f"{task}_test.csv" for task in listed.pop().split(",")}


def json_supplying_test_tasks() -> ModuleType:
    """``json`` for codes/experiment/experiment.py: a config.json read with ``json.load``
    whose ``test_tasks`` is empty (as in the published archives; the upstream asserts it
    lists every test file) gets the mapping from its own ``args``. The file is not touched."""
    module = ModuleType("json")
    module.__dict__.update(json.__dict__)

    def load(fp, **kwargs):
        content = json.load(fp, **kwargs)
        if isinstance(content, dict) and "test_tasks" in content and not content["test_tasks"]:
            content["test_tasks"] = test_tasks_from_args(content)
        return content

    module.load = load
    return module
