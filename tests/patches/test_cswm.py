"""patches.cswm: each patch is needed by the pinned c-swm (the upstream code fails without
it) and makes it run; the upstream tree stays untouched."""
import logging
import warnings

import numpy as np
import PIL.Image
import pytest
import torch
import torch.utils.data

from patches import cswm, vendor
from patches.gym_shim import gym_modules

TRAIN_ARGS = ["--encoder", "medium", "--embedding-dim", "4", "--action-dim", "6", "--num-objects", "2",
              "--copy-action", "--hidden-dim", "32", "--batch-size", "10", "--epochs", "1"]


@pytest.fixture(scope="module")
def upstream():
    return vendor.checkout("c-swm")


@pytest.fixture(scope="module")
def tiny_dataset(upstream, tmp_path_factory):
    """Two Space Invaders episodes made by data_gen/env.py under the patches."""
    path = tmp_path_factory.mktemp("cswm-patches") / "space.h5"
    cswm.run_script(upstream, "data_gen/env.py", ["--env_id", "SpaceInvadersDeterministic-v4", "--fname", str(path),
                                                  "--num_episodes", "2", "--atari", "--seed", "1"])
    return path


def test_data_generator_runs_and_leaves_the_upstream_untouched(upstream, tiny_dataset):
    buffer = vendor.import_modules(upstream, ["utils"]).utils.load_list_dict_h5py(str(tiny_dataset))
    assert len(buffer) == 2 and buffer[0]["obs"].shape == (10, 6, 50, 50)
    assert vendor.changes(upstream) == []


def test_antialias_is_lanczos_only_within_the_patch(upstream):
    frame = np.random.default_rng(0).integers(0, 256, (210, 160, 3), dtype=np.uint8)
    data_gen = vendor.import_modules(upstream, ["data_gen.env"], gym_modules()).data_gen_env
    with pytest.raises(AttributeError, match="ANTIALIAS"):
        data_gen.crop_normalize(frame, (30, 200))
    with cswm.pillow_antialias():
        assert PIL.Image.ANTIALIAS == PIL.Image.LANCZOS
        cropped = data_gen.crop_normalize(frame, (30, 200))
    assert not hasattr(PIL.Image, "ANTIALIAS")
    expected = np.asarray(PIL.Image.fromarray(frame[30:200]).resize((50, 50), PIL.Image.LANCZOS)).transpose(2, 0, 1)
    assert np.array_equal(cropped, expected / 255)


class Numbers(torch.utils.data.Dataset):
    def __len__(self):
        return 40

    def __getitem__(self, index):
        return index


def test_loader_iterators_have_next_within_the_patch():
    with pytest.raises(AttributeError, match="next"):
        torch.utils.data.DataLoader(Numbers(), batch_size=4).__iter__().next()
    with cswm.upstream_dataloader():
        loader = torch.utils.data.DataLoader(Numbers(), batch_size=4)
        assert loader.__iter__().next().tolist() == [0, 1, 2, 3]
    assert torch.utils.data.DataLoader is cswm.ORIGINAL_DATALOADER


def test_no_loader_workers_without_cuda():
    with cswm.upstream_dataloader():
        loader = torch.utils.data.DataLoader(Numbers(), batch_size=4, num_workers=4)
    assert loader.num_workers == (4 if torch.cuda.is_available() else 0)


def test_loader_workers_do_not_change_the_batches():
    """Why forcing 0 workers is safe: the shuffle and the workers' base seed come from the
    main process's RNG whatever the number of workers."""
    orders = []
    for workers in (0, 2):
        torch.manual_seed(5)
        loader = torch.utils.data.DataLoader(Numbers(), batch_size=8, shuffle=True, num_workers=workers)
        orders.append([batch.tolist() for epoch in range(2) for batch in loader] + [torch.rand(1).item()])
    assert orders[0] == orders[1]


def epochs_of_batches(loader_class, **options) -> list:
    """What train.py draws: a first batch for the input shape, then 3 epochs, then the next
    number of torch's generator."""
    torch.manual_seed(5)
    loader = loader_class(Numbers(), batch_size=8, shuffle=True, num_workers=2, **options)
    first = next(iter(loader)).tolist()
    return [first] + [[batch.tolist() for batch in loader] for epoch in range(3)] + [torch.rand(1).item()]


def test_with_cuda_the_workers_persist_and_pin_with_the_same_batches(monkeypatch):
    """A GPU run keeps train.py's 4 workers across its 500 epochs and pins batches, and still
    draws the batches (and leaves torch's generator) as the upstream's own loader does."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with cswm.upstream_dataloader(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'pin_memory' argument is set as true but no accelerator")
        loader = torch.utils.data.DataLoader(Numbers(), batch_size=4, num_workers=2)
        assert (loader.num_workers, loader.persistent_workers, loader.pin_memory) == (2, True, True)
        patched = epochs_of_batches(cswm.UpstreamDataLoader)
    assert patched == epochs_of_batches(cswm.ORIGINAL_DATALOADER)


@pytest.mark.slow
def test_train_script_runs_twice_in_one_process_with_separate_logs(upstream, tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root_handlers = list(logging.getLogger().handlers)
    for name in ("first", "second"):
        trained = cswm.run_script(upstream, "train.py", [*TRAIN_ARGS, "--dataset", str(tiny_dataset),
                                                         "--save-folder", "checkpoints", "--name", name])
        assert np.isfinite(trained["best_loss"])
        assert logging.getLogger().handlers == root_handlers
    first_log = (tmp_path / "checkpoints/first/log.txt").read_text()
    assert first_log.count("Starting model training") == 1 and (tmp_path / "checkpoints/second/model.pt").exists()
    assert vendor.changes(upstream) == []
