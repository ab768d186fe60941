"""``gym`` 0.12, as the pinned c-swm uses it, served by gymnasium 1.x and ale-py 0.12.

c-swm imports ``gym`` (``make``, ``Env``), ``gym.envs.registration.register``,
``gym.spaces``, ``gym.utils.seeding`` and ``gym.logger`` (``set_level``, ``INFO``); gym is
not installable on Python 3.11 with numpy 2, so ``gym_modules()`` builds these modules
from gymnasium for ``vendor.isolated(upstream, shims=...)``. Three differences are
bridged:

* Registrations. ale-py 0.12 registers only ``ALE/...`` ids, not gym 0.12's
  ``PongDeterministic-v4`` / ``SpaceInvadersDeterministic-v4`` that c-swm's data
  generator makes. They are registered here exactly as gym 0.12 did (its
  ``gym/envs/__init__.py``): ``AtariEnv(game, obs_type="image" (ale-py: "rgb"),
  frameskip=4, or 3 for Space Invaders)``, the AtariEnv defaults of gym 0.12 made explicit
  (``repeat_action_probability=0`` where ale-py's default is 0.25, the minimal action set:
  6 actions in both games) and ``max_episode_steps=100000`` (a TimeLimit); gym 0.12 had no
  environment checker.
* The old environment API (``OldApiEnv``): ``env.seed(s)``, ``reset() -> obs``,
  ``step(a) -> (obs, reward, done, info)`` with done = terminated or truncated, and
  ``env._max_episode_steps`` reading and setting the TimeLimit's limit, as on gym 0.12's
  TimeLimit wrapper (c-swm sets it to end every episode after warm-up + 11 steps; on a
  plain gymnasium wrapper the assignment would be silently ignored and the episodes run
  until the game ends).
* ``gym.logger``: gymnasium's logger has neither ``set_level`` nor ``INFO``; gym 0.12's
  levels and functions are provided.

Each ``gym_modules()`` call has its own registry, so nothing is registered in gymnasium's
global one. c-swm's own Shapes/Cubes environments register into it too, but they are
gym 0.12-style ``gym.Env`` classes and are not part of what this project runs.
"""
import sys
from types import ModuleType

import gymnasium
import gymnasium.spaces
import gymnasium.utils.seeding
from gymnasium.envs.registration import EnvSpec
from gymnasium.wrappers import TimeLimit

# gym 0.12, gym/envs/__init__.py: frameskip of the "Deterministic" Atari ids.
DETERMINISTIC_FRAMESKIP = {"pong": 4, "space_invaders": 3}
GYM_MAX_EPISODE_STEPS = 100000


def deterministic_v4_spec(game: str) -> EnvSpec:
    """gym 0.12's ``<Game>Deterministic-v4`` (image observations) on ale-py's AtariEnv."""
    name = "".join(part.capitalize() for part in game.split("_"))
    return EnvSpec(
        id=f"{name}Deterministic-v4",
        entry_point="ale_py.env:AtariEnv",
        kwargs={
            "game": game,
            "obs_type": "rgb",
            "frameskip": DETERMINISTIC_FRAMESKIP[game],
            "repeat_action_probability": 0.0,
            "full_action_space": False,
        },
        max_episode_steps=GYM_MAX_EPISODE_STEPS,
        disable_env_checker=True,
    )


class OldApiEnv:
    """gym 0.12's API on a gymnasium environment (see the module docstring).

    ``seed(s)`` takes effect at the next ``reset()`` (gym 0.12 reseeded at once; c-swm
    always resets right after seeding, so the episodes are the same).
    """

    def __init__(self, env: gymnasium.Env):
        self.env = env
        self._pending_seed = None

    @property
    def action_space(self) -> gymnasium.Space:
        return self.env.action_space

    @property
    def observation_space(self) -> gymnasium.Space:
        return self.env.observation_space

    @property
    def unwrapped(self) -> gymnasium.Env:
        return self.env.unwrapped

    @property
    def spec(self) -> EnvSpec | None:
        return self.env.spec

    def seed(self, seed: int | None = None) -> list:
        self._pending_seed = seed
        return [seed]

    def reset(self):
        observation, _ = self.env.reset(seed=self._pending_seed)
        self._pending_seed = None
        return observation

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, reward, terminated or truncated, info

    def close(self) -> None:
        self.env.close()

    def _time_limit(self) -> TimeLimit:
        env = self.env
        while not isinstance(env, TimeLimit):
            if not hasattr(env, "env"):
                raise AttributeError(f"{self.spec.id if self.spec else self.env} has no TimeLimit")
            env = env.env
        return env

    @property
    def _max_episode_steps(self) -> int:
        return self._time_limit()._max_episode_steps

    @_max_episode_steps.setter
    def _max_episode_steps(self, steps: int) -> None:
        self._time_limit()._max_episode_steps = steps


def _logger_module() -> ModuleType:
    """gym 0.12's ``gym.logger``: levels, ``set_level`` and the printing functions."""
    logger = ModuleType("gym.logger")
    logger.DEBUG, logger.INFO, logger.WARN, logger.ERROR, logger.DISABLED = 10, 20, 30, 40, 50
    logger.MIN_LEVEL = logger.INFO

    def set_level(level: int) -> None:
        logger.MIN_LEVEL = level

    def say(level: int, label: str):
        def log(message, *args):
            if logger.MIN_LEVEL <= level:
                print(f"{label}: {message % args if args else message}", file=sys.stderr)
        return log

    logger.set_level = set_level
    logger.debug, logger.info = say(logger.DEBUG, "DEBUG"), say(logger.INFO, "INFO")
    logger.warn, logger.error = say(logger.WARN, "WARN"), say(logger.ERROR, "ERROR")
    return logger


def gym_modules() -> dict[str, ModuleType]:
    """Fresh ``gym`` modules for ``vendor.isolated(..., shims=...)``, name -> module, with
    their own registry holding gym 0.12's PongDeterministic-v4 and
    SpaceInvadersDeterministic-v4."""
    registry = {spec.id: spec for spec in map(deterministic_v4_spec, DETERMINISTIC_FRAMESKIP)}

    def register(id: str, **kwargs) -> None:
        registry[id] = EnvSpec(id=id, disable_env_checker=True, **kwargs)

    def make(id: str) -> OldApiEnv:
        if id not in registry:
            raise gymnasium.error.UnregisteredEnv(f"no environment {id!r} in the gym shim; it has {sorted(registry)}")
        return OldApiEnv(gymnasium.make(registry[id]))

    registration = ModuleType("gym.envs.registration")
    registration.registry, registration.register, registration.make = registry, register, make
    envs = ModuleType("gym.envs")
    envs.registration, envs.register, envs.make = registration, register, make
    utils = ModuleType("gym.utils")
    utils.seeding = gymnasium.utils.seeding
    gym = ModuleType("gym")
    gym.make, gym.register, gym.Env, gym.error = make, register, gymnasium.Env, gymnasium.error
    gym.envs, gym.spaces, gym.utils, gym.logger = envs, gymnasium.spaces, utils, _logger_module()
    return {
        "gym": gym,
        "gym.envs": envs,
        "gym.envs.registration": registration,
        "gym.spaces": gymnasium.spaces,
        "gym.utils": utils,
        "gym.utils.seeding": gymnasium.utils.seeding,
        "gym.logger": gym.logger,
    }
