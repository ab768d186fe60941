"""clutrr-baselines' RN with each refiner kind (paper settings but the steps), on one
real batch of the shared CLUTRR data. The encoder is built as the upstream's
``choose_model`` builds it, through ``adapters.clutrr.install_on_construction`` wrapped
around it, then the upstream's Trainer as run_experiment makes it."""
from types import SimpleNamespace

import torch

from adapters import clutrr as adapter
from refiners.settings import KindSettings
from tests.adapters.adapter_case import AdapterCase, case_settings
from tests.clutrr_world import TinyRN, batch_loss, world


def _build(settings: KindSettings | None) -> tuple[TinyRN, torch.nn.Module | None]:
    w = world()
    relation_nets = w.modules.relation_nets

    def choose_model(config):  # net_registry.choose_model for rn.yaml, without its importlib lookup
        model_config = w.modules.net_registry.prepare_config_for_model(config)
        return relation_nets.RelationNetworkEncoder(model_config), relation_nets.RelationNetworkDecoder(model_config)

    experiment = SimpleNamespace(choose_model=choose_model)
    if settings is not None:
        experiment = adapter.install_on_construction(experiment, settings)
    torch.manual_seed(0)
    encoder, decoder = experiment.choose_model(w.config)
    trainer = w.modules.trainer.Trainer(w.config.model, encoder, decoder, max_entity_id=w.data.max_entity_id)
    return TinyRN(encoder, decoder, trainer), None if settings is None else encoder.reader.refiner


def case(kind: str, settings: KindSettings) -> AdapterCase:
    return AdapterCase(
        upstream=adapter.UPSTREAM, kind=kind, settings=settings,
        make=_build,
        make_baseline=lambda: _build(None)[0],
        loss=lambda model: batch_loss(model)[0],
        output=lambda model: batch_loss(model)[1],
        target=lambda model: model.encoder,
    )


TINY = {"srn": dict(steps=0, inner_lr=0.001), "grn": dict(steps=0, inner_lr=0.0005, hidden=256)}
CASES = [case(kind, case_settings(kind, TINY)) for kind in adapter.ADAPTER.kinds()]
