"""runners/cswm_train.py: one run through the upstream's train.py and eval.py, with the SRN
installed at construction; its checkpoint loads back in eval.py."""
import numpy as np
import pytest
import torch

from refiners.descent import DescentSettings
from adapters.cswm import RefinedObjectEncoder
from patches import vendor
from patches.cswm_frames import to_float
from runners import cswm_data, cswm_train
from runners.common.seeding import seed_everything


def test_device_flags_say_only_what_the_upstream_would_not_choose():
    assert cswm_train.device_argv(torch.device("cpu")) == (["--no-cuda"] if torch.cuda.is_available() else [])
    assert cswm_train.device_argv(torch.device("cuda")) == []


def test_srn_checkpoint_round_trip_and_eval_under_no_grad(cswm_upstream, cswm_data_dir, tmp_path):
    train_set = cswm_data.dataset_path(cswm_data_dir, "space", "train", 4)
    eval_set = cswm_data.dataset_path(cswm_data_dir, "space", "eval", 100)
    settings = cswm_train.TrainSettings(num_objects=2, epochs=1, batch_size=20, learning_rate=1e-3,
                                           encoder="medium", embedding_dim=4, action_dim=6, hidden_dim=32,
                                           copy_action=True)
    srn = DescentSettings("srn", steps=2, inner_lr=0.05, hidden=32, seed=3)
    trained, _ = cswm_train.train(cswm_upstream, train_set, tmp_path / "srn", settings, seed=0, refiner=srn)
    evaluated = cswm_train.evaluate(cswm_upstream, eval_set, tmp_path / "srn", steps=1, refiner=srn)
    encoder = evaluated["model"].obj_encoder
    assert isinstance(encoder, RefinedObjectEncoder) and encoder.refiner.steps == 2
    saved = torch.load(tmp_path / "srn/model.pt")
    assert all(torch.equal(value, saved[key]) for key, value in evaluated["model"].state_dict().items())
    states = evaluated["next_state_flat"]
    assert not states.requires_grad and torch.isfinite(states).all()
    episodes = vendor.import_modules(cswm_upstream, ["utils"]).utils.load_list_dict_h5py(str(eval_set))  # eval.py's order
    next_obs = torch.from_numpy(to_float(np.stack([episode["next_obs"][0] for episode in episodes])))
    model = trained["model"].eval()
    with torch.no_grad():
        masks = model.obj_extractor(next_obs)
        assert torch.equal(model.obj_encoder(masks).flatten(1), states)
        assert not torch.equal(model.obj_encoder.initial(masks).flatten(1), states)


def test_state_spread_is_the_root_mean_squared_distance_to_the_mean_by_hand():
    """[[0, 0], [3, 0], [0, 6]]: mean (1, 2); squared distances 1 + 4, 4 + 4, 1 + 16 = 5, 8, 17;
    their mean 10, so sqrt(10) (per coordinate it would be sqrt(5), the mean distance 2.57, ddof=1 sqrt(15),
    distances to the origin sqrt(15))."""
    import math
    states = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 6.0]])
    assert math.isclose(cswm_train.state_spread(states), math.sqrt(10.0), rel_tol=1e-6)
    # four states in 3-d: mean (1, 1, 1); squared distances 3, 3, 0 + 9 + 1, 0 + 9 + 1 -> mean 6.5
    states = torch.tensor([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0], [1.0, 4.0, 2.0], [1.0, -2.0, 0.0]])
    assert math.isclose(cswm_train.state_spread(states), math.sqrt(6.5), rel_tol=1e-6)
    assert cswm_train.state_spread(torch.full((5, 4), 2.5)) == 0.0  # a collapsed encoder
    assert math.isclose(cswm_train.state_spread(torch.tensor([[1.0, 2.0], [4.0, 6.0]])), 2.5, rel_tol=1e-6)  # half of 5


@pytest.mark.slow
@pytest.mark.parametrize("refiner", [None, DescentSettings("srn", steps=2, inner_lr=0.05, hidden=32, seed=3)],
                         ids=["baseline", "srn"])
def test_the_curve_ranks_every_nth_epoch_without_changing_the_training(cswm_upstream, cswm_data_dir, tmp_path,
                                                                        refiner):
    """Ranking the evaluation set between epochs (eval.py reseeds every generator) leaves
    the run bit for bit as it is without it: the same losses, the same final ranking. The
    last epoch's ranking is made after train.py's end."""
    train_set = cswm_data.dataset_path(cswm_data_dir, "space", "train", 4)
    eval_set = cswm_data.dataset_path(cswm_data_dir, "space", "eval", 100)
    settings = cswm_train.TrainSettings(num_objects=2, epochs=2, batch_size=10, learning_rate=1e-3,
                                        encoder="medium", embedding_dim=4, action_dim=6, hidden_dim=32,
                                        copy_action=True)

    def run(name: str, eval_every: int | None) -> dict:
        seed_everything(0, 1)
        return cswm_train.train_and_evaluate(cswm_upstream, train_set, eval_set, tmp_path / name, settings, 0,
                                             refiner, eval_every=eval_every)

    plain, watched = run("plain", None), run("watched", 1)
    assert [entry["epoch"] for entry in plain["curve"]] == [1, 2]
    assert all(set(entry) == {"epoch", "train_loss"} for entry in plain["curve"])
    assert [entry["train_loss"] for entry in watched["curve"]] == [entry["train_loss"] for entry in plain["curve"]]
    assert {key: value for key, value in watched.items() if key != "curve"} == \
        {key: value for key, value in plain.items() if key != "curve"}
    ranked = {"samples", "spread", *(f"{key}_{steps}" for key in ("h1", "mrr") for steps in cswm_train.PREDICTION_STEPS)}
    assert [set(entry) for entry in watched["curve"]] == [{"epoch", "train_loss", *ranked}] * 2
    last = watched["curve"][-1]  # the second epoch is train.py's best, so its checkpoint is the model ranked last
    assert plain["train_loss"] == pytest.approx(last["train_loss"], abs=1e-6)
    assert {key: last[key] for key in ranked} == {key: plain[key] for key in ranked}
    assert (tmp_path / "watched" / "log.txt").read_text().count("====> Epoch:") == 2  # train.py's own log is whole
