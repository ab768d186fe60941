"""patches.gym_shim: the gym 0.12 that c-swm imports, on gymnasium 1.x and ale-py 0.12."""
import gymnasium
import numpy as np
import pytest

from patches import vendor
from patches.gym_shim import gym_modules

GAMES = {"PongDeterministic-v4": 4, "SpaceInvadersDeterministic-v4": 3}  # gym 0.12's frameskips


@pytest.fixture(scope="module")
def upstream():
    return vendor.checkout("c-swm")


@pytest.fixture
def gym():
    return gym_modules()["gym"]


def test_upstream_data_generator_imports_gym_only_through_the_shim(upstream):
    with pytest.raises(ModuleNotFoundError, match="gym"):
        vendor.import_modules(upstream, ["data_gen.env"])
    shims = gym_modules()
    imported = vendor.import_modules(upstream, ["data_gen.env", "envs"], shims)
    assert imported.data_gen_env.gym is shims["gym"]
    assert "ShapesTrain-v0" in shims["gym.envs.registration"].registry  # envs/__init__.py registered through it
    assert "ShapesTrain-v0" not in gymnasium.registry


def test_logger_has_gym_012_levels(gym):
    assert not hasattr(gymnasium.logger, "set_level")
    gym.logger.set_level(gym.logger.INFO)
    assert gym.logger.MIN_LEVEL == gym.logger.INFO == 20


@pytest.mark.parametrize("env_id", sorted(GAMES))
def test_deterministic_v4_is_registered_as_in_gym_012(gym, env_id):
    assert env_id not in gymnasium.registry
    env = gym.make(env_id)
    assert env.action_space.n == 6
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == 0.0
    assert env._max_episode_steps == 100000
    env.seed(0)
    env.reset()
    env.step(0)
    assert env.unwrapped.ale.getEpisodeFrameNumber() == GAMES[env_id]
    env.close()


def test_old_api_seeds_resets_and_steps(gym):
    env = gym.make("SpaceInvadersDeterministic-v4")
    episodes = []
    for _ in range(2):
        env.seed(3)
        env.action_space.seed(3)
        frames = [env.reset()]
        for _ in range(60):
            observation, reward, done, info = env.step(env.action_space.sample())
            frames.append(observation)
        episodes.append(np.stack(frames))
    assert episodes[0].shape == (61, 210, 160, 3) and isinstance(done, bool) and "lives" in info
    assert np.array_equal(episodes[0], episodes[1])
    assert not np.array_equal(episodes[0][0], episodes[0][-1])
    env.close()


def test_setting_max_episode_steps_ends_episodes(gym):
    env = gym.make("PongDeterministic-v4")
    env._max_episode_steps = 58 + 11  # what data_gen/env.py does for Pong
    env.seed(1)
    for _ in range(2):
        env.reset()
        steps, done = 0, False
        while not done:
            _, _, done, _ = env.step(0)
            steps += 1
        assert steps == 69
    env.close()


def test_every_shim_has_its_own_registry():
    first, second = gym_modules(), gym_modules()
    first["gym.envs.registration"].register("Extra-v0", entry_point="ale_py.env:AtariEnv", kwargs={"game": "pong"})
    assert "Extra-v0" not in second["gym.envs.registration"].registry
    with pytest.raises(gymnasium.error.UnregisteredEnv, match="Extra-v0"):
        second["gym"].make("Extra-v0")
