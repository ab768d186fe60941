"""runners/cswm_data.py: the upstream's data_gen/env.py under the patches, its frames
checked against the protocol, the cache and its checks."""
import shutil

import h5py
import numpy as np
import PIL.Image
import pytest

from patches.gym_shim import gym_modules
from runners import cswm_data


def _episodes(path):
    """The stored episodes in the order they were generated."""
    with h5py.File(path, "r") as file:
        return [{key: file[str(index)][key][:] for key in file[str(index)]} for index in range(len(file))]


@pytest.mark.parametrize("env,env_id,crop,warmstart", [
    ("space", "SpaceInvadersDeterministic-v4", (30, 200), 50),
    ("pong", "PongDeterministic-v4", (35, 190), 58),
])
def test_frames_follow_the_protocol(cswm_upstream, tmp_path, env, env_id, crop, warmstart):
    """Replays the random agent of data_gen/env.py (same seeds) on the shimmed env and
    rebuilds every stored observation: crop, 50x50 Lanczos, [0, 1], (current, previous)."""
    path = cswm_data.ensure_dataset(cswm_upstream, tmp_path, env, "train", 2)
    episodes = _episodes(path)
    game = gym_modules()["gym"].make(env_id)
    game._max_episode_steps = warmstart + 11
    game.seed(1)
    game.action_space.seed(1)

    def frame(raw):
        image = PIL.Image.fromarray(raw[crop[0]:crop[1]]).resize((50, 50), PIL.Image.LANCZOS)
        return np.asarray(image).transpose(2, 0, 1) / 255

    for episode in episodes:
        game.reset()
        for _ in range(warmstart):
            raw, _, _, _ = game.step(game.action_space.sample())
        previous = frame(raw)
        raw, _, _, _ = game.step(0)
        current, done, actions, observations = frame(raw), False, [], []
        while not done:
            observations.append(np.concatenate([current, previous]))
            actions.append(game.action_space.sample())
            raw, _, done, _ = game.step(actions[-1])
            previous, current = current, frame(raw)
        observations.append(np.concatenate([current, previous]))
        assert len(actions) == 10
        assert np.array_equal(episode["action"], actions)
        assert episode["obs"].dtype == episode["next_obs"].dtype == np.uint8
        assert np.array_equal(episode["obs"] / 255, np.stack(observations[:-1]))
        assert np.array_equal(episode["next_obs"] / 255, np.stack(observations[1:]))
        assert episode["obs"].shape == (10, 6, 50, 50) and np.array_equal(episode["next_obs"][:, 3:], episode["obs"][:, :3])


def test_datasets_are_cached_and_checked(cswm_upstream, cswm_data_dir, tmp_path):
    path = cswm_data.dataset_path(cswm_data_dir, "space", "train", 4)
    modified = path.stat().st_mtime_ns
    assert cswm_data.ensure_dataset(cswm_upstream, cswm_data_dir, "space", "train", 4) == path
    assert path.stat().st_mtime_ns == modified
    with pytest.raises(cswm_data.UsageError, match="4 episodes, expected 3"):
        cswm_data.check_dataset(path, 3)
    broken = tmp_path / "broken.h5"
    shutil.copy(path, broken)
    with h5py.File(broken, "r+") as file:
        file["2/next_obs"][4, 3] = 255 - file["2/next_obs"][4, 3]
    with pytest.raises(cswm_data.UsageError, match=r"episode 2: frames not stacked.*delete it"):
        cswm_data.check_dataset(broken, 4)
