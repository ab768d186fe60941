"""refiners/descent.py: the settings of the inner-gradient-descent kinds (srn, grn)."""
import dataclasses

import pytest

from refiners.descent import DescentSettings
from srn.inner_descent import MAX_STEPS


@pytest.mark.parametrize("changes,message", [
    ({"kind": "dspn"}, "kind must be one of srn, grn"),
    ({"steps": -1}, f"steps must be an integer in [0, {MAX_STEPS}]"),
    ({"steps": MAX_STEPS + 1}, f"steps must be an integer in [0, {MAX_STEPS}]"),
    ({"steps": 2.0}, f"steps must be an integer in [0, {MAX_STEPS}]"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"pieces": 0}, "pieces must be an integer >= 1"),
    ({"inner_lr": float("inf")}, "inner_lr must be a finite number > 0"),
    ({"momentum": 1.0}, "momentum must be a finite number in [0, 1)"),
    ({"backprop": "some"}, "backprop must be one of unroll, last"),
    ({"hidden": 0}, "hidden must be an integer >= 1"),
    ({"embedding": 0}, "embedding must be an integer >= 1"),
])
def test_settings_no_refiner_can_run_with_are_refused(changes, message):
    with pytest.raises(ValueError) as error:
        DescentSettings(**{"kind": "srn", "steps": 1, "inner_lr": 0.1, **changes})
    assert message in str(error.value)


def test_settings_are_frozen_with_the_papers_defaults():
    """Appendix B-E: H_agg 512 wide, FSPool with 20 pieces, plain unrolled inner SGD; z as
    wide as the upstream's model unless set; the seed is each run's."""
    settings = DescentSettings("srn", 10, 0.05)
    assert (settings.hidden, settings.pieces, settings.momentum, settings.backprop) == (512, 20, 0.0, "unroll")
    assert settings.embedding is None and settings.embedding_or(64) == 64 and settings.seed is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.steps = 0


def test_embedding_defaults_to_the_upstreams_width():
    assert DescentSettings("srn", 1, 0.1).embedding_or(200) == 200
    assert DescentSettings("srn", 1, 0.1, embedding=64).embedding_or(200) == 64
