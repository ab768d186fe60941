"""C-SWM frames as uint8: the same frames data_gen/env.py makes, the same float32 values in
training, so the same weights and rankings as from the upstream's float64 files."""
import contextlib
import io

import h5py
import numpy as np
import pytest
import torch

from patches import cswm
from patches.cswm_frames import CompactingOutput, as_uint8, to_float
from runners import cswm_data

LEVELS = np.arange(256, dtype=np.uint8)
TRAIN_ARGS = ["--encoder", "medium", "--embedding-dim", "4", "--action-dim", "6", "--num-objects", "2",
              "--copy-action", "--hidden-dim", "16", "--batch-size", "20", "--epochs", "1", "--learning-rate", "0.001",
              "--seed", "0"]


def test_every_level_survives_the_round_trip_exactly():
    frames = LEVELS / 255  # float64, as data_gen/env.py makes them
    assert np.array_equal(as_uint8(frames), LEVELS) and np.array_equal(as_uint8(list(frames)), LEVELS)
    assert np.array_equal(to_float(LEVELS), np.array(frames, dtype=np.float32))  # bit for bit
    assert to_float(LEVELS).dtype == np.float32 and np.array_equal(to_float(frames), to_float(LEVELS))


@pytest.mark.parametrize("values,message", [([0.5 / 255], "not multiples of 1/255"), ([1.5], "outside")])
def test_values_that_are_not_levels_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        as_uint8(np.array(values))


def generated(upstream, path, uint8_frames: bool):
    argv = ["--env_id", "SpaceInvadersDeterministic-v4", "--fname", str(path), "--num_episodes", "11",
            "--atari", "--seed", "1"]
    output = CompactingOutput(lambda finished: None) if uint8_frames else io.StringIO()
    cswm.run_script(upstream, "data_gen/env.py", argv, output=output, uint8_frames=uint8_frames)
    with h5py.File(path, "r") as file:
        return [{key: file[str(i)][key][:] for key in file[str(i)]} for i in range(len(file))]


def test_generation_stores_the_upstreams_frames_as_uint8(cswm_upstream, tmp_path):
    """11 episodes: the 10 compacted at "iter 10" and the last one, saved by the patched save."""
    upstream_episodes = generated(cswm_upstream, tmp_path / "float64.h5", uint8_frames=False)
    episodes = generated(cswm_upstream, tmp_path / "uint8.h5", uint8_frames=True)
    assert len(episodes) == len(upstream_episodes) == 11
    for ours, theirs in zip(episodes, upstream_episodes):
        assert theirs["obs"].dtype == np.float64 and ours["obs"].dtype == np.uint8
        for key in ("obs", "next_obs"):
            assert np.array_equal(ours[key] / 255, theirs[key])
        assert np.array_equal(ours["action"], theirs["action"])
    assert (tmp_path / "uint8.h5").stat().st_size * 4 < (tmp_path / "float64.h5").stat().st_size


def float64_copy(path, target):
    """The dataset with its frames as the upstream stores them (float64 k / 255)."""
    with h5py.File(path, "r") as source, h5py.File(target, "w") as copy:
        for name, episode in source.items():
            for key, values in episode.items():
                copy.create_dataset(f"{name}/{key}", data=values[:] / 255 if values.dtype == np.uint8 else values[:])
    return target


def train_and_rank(upstream, train_set, eval_set, folder):
    torch.set_num_threads(1)
    cswm.run_script(upstream, "train.py", [*TRAIN_ARGS, "--dataset", str(train_set), "--save-folder", str(folder),
                                           "--name", "run"], output=io.StringIO())
    evaluated = cswm.run_script(upstream, "eval.py", ["--dataset", str(eval_set), "--save-folder",
                                                       str(folder / "run"), "--num-steps", "1"], output=io.StringIO())
    return torch.load(folder / "run" / "model.pt"), (evaluated["hits_at"][1], float(evaluated["rr_sum"]))


def test_training_and_ranking_are_those_of_the_float64_files(cswm_upstream, cswm_data_dir, tmp_path):
    train_set = cswm_data.dataset_path(cswm_data_dir, "space", "train", 4)
    eval_set = cswm_data.dataset_path(cswm_data_dir, "space", "eval", 100)
    ours = train_and_rank(cswm_upstream, train_set, eval_set, tmp_path / "uint8")
    theirs = train_and_rank(cswm_upstream, float64_copy(train_set, tmp_path / "train64.h5"),
                            float64_copy(eval_set, tmp_path / "eval64.h5"), tmp_path / "float64")
    assert ours[0].keys() == theirs[0].keys()
    assert all(torch.equal(ours[0][key], theirs[0][key]) for key in ours[0])
    assert ours[1] == theirs[1]


def test_an_earlier_float64_cache_is_converted_once(cswm_upstream, cswm_data_dir, tmp_path, capsys):
    source = cswm_data.dataset_path(cswm_data_dir, "space", "train", 4)
    old = cswm_data.dataset_path(tmp_path, "space", "train", 4)
    old.parent.mkdir(parents=True)
    float64_copy(source, old)
    with contextlib.redirect_stderr(io.StringIO()):
        assert cswm_data.ensure_dataset(cswm_upstream, tmp_path, "space", "train", 4) == old
    assert "converting them to uint8 once" in capsys.readouterr().out
    with h5py.File(old, "r") as converted, h5py.File(source, "r") as expected:
        assert all(np.array_equal(converted[f"{i}/obs"][:], expected[f"{i}/obs"][:]) for i in range(4))
    modified = old.stat().st_mtime_ns
    cswm_data.ensure_dataset(cswm_upstream, tmp_path, "space", "train", 4)
    assert old.stat().st_mtime_ns == modified
