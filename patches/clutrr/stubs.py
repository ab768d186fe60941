"""Stand-ins for modules clutrr-baselines imports unconditionally but the RN path never
needs: ``comet_ml`` (experiment logging; here a recorder the runner reads its metrics
from), ``pytorch_pretrained_bert``, ``bert_serving`` and ``sacremoses`` (BERT baselines
only: any use raises)."""
import contextlib
from types import ModuleType


class MetricRecorder:
    """``comet_ml.Experiment`` as clutrr-baselines uses it, recording instead of uploading:
    ``metrics`` holds one (context, name, step, value) per ``log_metric`` call, where
    context is "train", "validate", "test" or None (the enclosing ``with exp.train():``...)."""

    def __init__(self, *args, **kwargs):
        self.id = "offline"
        self.metrics: list[tuple[str | None, str, int | None, float]] = []
        self.parameters: dict = {}
        self._context: str | None = None

    def log_metric(self, name, value, step=None, **kwargs):
        self.metrics.append((self._context, name, step, float(value)))

    def log_parameters(self, parameters, **kwargs):
        self.parameters.update(parameters)

    def set_name(self, name):
        self.name = name

    def log_dataset_info(self, *args, **kwargs):
        pass

    @contextlib.contextmanager
    def _in_context(self, context):
        outer, self._context = self._context, context
        try:
            yield self
        finally:
            self._context = outer

    def train(self):
        return self._in_context("train")

    def validate(self):
        return self._in_context("validate")

    def test(self):
        return self._in_context("test")


class OnlyForBert:
    """A class of a BERT-only dependency: constructing or loading it says it is not available."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} belongs to clutrr-baselines' BERT baselines, "
                                  "which this project does not run")

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        return cls()


def _module(name: str, **attributes) -> ModuleType:
    module = ModuleType(name)
    module.__dict__.update(attributes)
    return module


def stub_modules() -> dict[str, ModuleType]:
    """Fresh stub modules by import name, for ``patches.vendor.isolated(shims=...)``."""
    bert_tokenizer = type("BertTokenizer", (OnlyForBert,), {})
    bert_model = type("BertModel", (OnlyForBert,), {})
    bert_client = type("BertClient", (OnlyForBert,), {})
    detokenizer = type("MosesDetokenizer", (OnlyForBert,), {})
    tokenization = _module("pytorch_pretrained_bert.tokenization", BertTokenizer=bert_tokenizer)
    client = _module("bert_serving.client", BertClient=bert_client)
    return {
        "comet_ml": _module("comet_ml", Experiment=MetricRecorder, ExistingExperiment=MetricRecorder),
        "pytorch_pretrained_bert": _module("pytorch_pretrained_bert", BertModel=bert_model,
                                           BertTokenizer=bert_tokenizer, tokenization=tokenization),
        "pytorch_pretrained_bert.tokenization": tokenization,
        "bert_serving": _module("bert_serving", client=client),
        "bert_serving.client": client,
        "sacremoses": _module("sacremoses", MosesDetokenizer=detokenizer),
    }
