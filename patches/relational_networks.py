"""kimhc6028/relational-networks at the pinned commit, as the project uses it.

* ``model.py`` (``RN``, ``RN.train_``, ``RN.test_``) imports and runs unchanged on
  torch 2.13, numpy 2.4 and opencv 5: no compatibility shim is needed. It still calls
  ``F.log_softmax(x)`` without ``dim`` (a deprecation warning; torch picks dim=1 for its
  2-D input, what the upstream meant) and ``Variable`` (an alias of ``Tensor`` now).
* ``sort_of_clevr_generator.py`` is a script: importing it builds 10,000 images and
  pickles them (1.4 GB of float64) into ./data. ``generator_module`` runs only its
  definitions (imports, literal constants, ``center_generate``, ``build_dataset``), so
  the upstream's own functions generate the data without the script's side effects.
* ``output_dropout_off`` switches off the ``F.dropout`` of ``FCOutputModel`` that stays
  active even in eval mode, for evaluations that need a deterministic model.
"""
import ast
import contextlib
import types
from typing import Iterator, Mapping

import torch.nn.functional
from torch import nn

from patches import vendor

NAME = "relational-networks"
GENERATOR = "sort_of_clevr_generator.py"


def checkout() -> vendor.Upstream:
    """The verified pinned checkout (raises vendor.UpstreamError with a fix if it is not)."""
    return vendor.checkout(NAME)


def model_module(upstream: vendor.Upstream) -> types.ModuleType:
    """The upstream's model.py (RN, CNN_MLP, ConvInputModel, FCOutputModel), imported as is."""
    return vendor.import_modules(upstream, ["model"]).model


def _is_definition(node: ast.stmt) -> bool:
    """Imports, function definitions and assignments of literal constants."""
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef)):
        return True
    if isinstance(node, ast.Assign):
        try:
            ast.literal_eval(node.value)
        except ValueError:
            return False
        return True
    return False


def generator_module(upstream: vendor.Upstream, shims: Mapping[str, types.ModuleType] | None = None) -> types.ModuleType:
    """The definitions of the upstream's sort_of_clevr_generator.py (``build_dataset``,
    ``center_generate``, ``colors``, ``size``, ``img_size``, ``nb_questions``, ...) without
    its script body (making ./data, building 10,000 images, writing the pickle).
    ``shims`` replace modules it imports (e.g. ``cv2``)."""
    path = upstream.root / GENERATOR
    tree = ast.parse(path.read_text(), filename=str(path))
    definitions = ast.Module(body=[node for node in tree.body if _is_definition(node)], type_ignores=[])
    module = types.ModuleType(path.stem)
    module.__file__ = str(path)
    with vendor.isolated(upstream, shims):
        exec(compile(definitions, str(path), "exec"), module.__dict__)
    return module


class _FunctionalWithoutDropout(types.ModuleType):
    """torch.nn.functional with ``dropout`` the identity."""

    def __init__(self):
        super().__init__("torch.nn.functional")

    def __getattr__(self, name: str):
        return getattr(torch.nn.functional, name)

    @staticmethod
    def dropout(input, p=0.5, training=True, inplace=False):
        return input


@contextlib.contextmanager
def output_dropout_off(model: nn.Module) -> Iterator[None]:
    """Within the block, the upstream ``FCOutputModel`` of ``model`` (and of every model
    built from the same import of model.py) runs without its always-on ``F.dropout``."""
    namespace = type(model.fcout).forward.__globals__
    functional = namespace["F"]
    namespace["F"] = _FunctionalWithoutDropout()
    try:
        yield
    finally:
        namespace["F"] = functional
