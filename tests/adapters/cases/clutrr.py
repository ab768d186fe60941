"""clutrr-baselines' RN with an SRN and with a GRN (paper settings but the steps), on one
real batch of the shared CLUTRR data; the model is built lazily on first use."""
from adapters.clutrr import RefinerSettings
from tests.adapters.adapter_case import AdapterCase
from tests.clutrr_world import batch_loss, build_model


def case(kind: str, inner_lr: float) -> AdapterCase:
    return AdapterCase(
        name=f"clutrr-baselines-{kind}",
        make=lambda steps: build_model(RefinerSettings(kind, steps, inner_lr)),
        make_baseline=lambda: build_model()[0],
        loss=lambda model: batch_loss(model)[0],
        output=lambda model: batch_loss(model)[1],
    )


CASES = [case("SRN", 0.001), case("GRN", 0.0005)]
