"""The three MuZero functions as Keras 3 models, for any number of players.

- representation h: observation -> hidden state
- dynamics g: (hidden state, action) -> next hidden state, reward of every player, logits of the
  player to move next
- prediction f: hidden state -> policy logits, value of every player

Hidden states are min-max normalised to [0, 1] per example (MuZero appendix G). With
`scalar_support_size` K > 0, rewards and values are logits over 2K+1 atoms (see support.py);
otherwise plain scalars. Two families: a residual conv tower for board planes (resnet) and an MLP
for vectors (mlp).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from itertools import count

import h5py
import keras
import numpy as np
from keras import layers, ops

from muzero.config import SCHEMA_1_LATER_FIELDS, Config
from muzero.plugins import GamePlugin

METADATA_ATTRIBUTE = "muzero_metadata"


class WeightsMismatchError(ValueError):
    """A weights file that does not belong to this network (other game or architecture)."""


@dataclass(frozen=True)
class NetworkSpec:
    """Everything that fixes the shapes of the weights: two networks with equal specs can swap."""

    game: str
    network: str
    observation_shape: tuple[int, ...]
    num_actions: int
    num_players: int
    channels: int
    num_blocks: int
    hidden_size: int
    mlp_layers: int
    scalar_support_size: int
    residual_dynamics: bool

    @classmethod
    def from_config(cls, config: Config, observation_shape: tuple[int, ...], num_actions: int,
                    num_players: int) -> NetworkSpec:
        return cls(game=config.game, network=config.network,
                   observation_shape=tuple(observation_shape), num_actions=num_actions,
                   num_players=num_players, channels=config.channels,
                   num_blocks=config.num_blocks, hidden_size=config.hidden_size,
                   mlp_layers=config.mlp_layers, scalar_support_size=config.scalar_support_size,
                   residual_dynamics=config.residual_dynamics)

    @property
    def scalar_width(self) -> int:
        """Outputs per player for a reward or value: 1, or 2K+1 support logits."""
        return 2 * self.scalar_support_size + 1 if self.scalar_support_size else 1

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


class _Initializers:
    """Seeded initialisers, one fresh seed per layer: the same seed builds the same weights."""

    def __init__(self, seed: int):
        self._seeds = count(seed * 1000)

    def __call__(self) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=next(self._seeds))


def _normalise_hidden(x):
    """Scale each example's hidden state to [0, 1] (MuZero appendix G)."""
    axes = tuple(range(1, len(x.shape)))
    low = ops.min(x, axis=axes, keepdims=True)
    high = ops.max(x, axis=axes, keepdims=True)
    return (x - low) / (high - low + 1e-6)


def _scalar_head(x, spec: NetworkSpec, init: _Initializers, name: str):
    """One reward/value per player: [B, P], or support logits [B, P, 2K+1]."""
    x = layers.Dense(spec.num_players * spec.scalar_width, kernel_initializer=init(), name=name)(x)
    if spec.scalar_support_size:
        x = layers.Reshape((spec.num_players, spec.scalar_width), name=f"{name}_support")(x)
    return x


# ----- residual conv tower (board planes) -----

def _conv(x, channels: int, init: _Initializers, kernel: int = 3):
    return layers.Conv2D(channels, kernel, padding="same", kernel_initializer=init())(x)


def _residual_tower(x, spec: NetworkSpec, init: _Initializers):
    for _ in range(spec.num_blocks):
        y = _conv(layers.ReLU()(x), spec.channels, init)
        y = _conv(layers.ReLU()(y), spec.channels, init)
        x = layers.Add()([x, y])
    return x


def _conv_representation(spec: NetworkSpec, init: _Initializers) -> keras.Model:
    observation = keras.Input(spec.observation_shape, name="observation")
    x = _residual_tower(_conv(observation, spec.channels, init), spec, init)
    hidden = layers.Lambda(_normalise_hidden, name="hidden")(x)
    return keras.Model(observation, hidden, name="representation")


def _dynamics_model(hidden, action, state, features, spec: NetworkSpec,
                    init: _Initializers) -> keras.Model:
    """Both families end the same way: normalise the new state, read reward and to-play heads."""
    next_hidden = layers.Lambda(_normalise_hidden, name="next_hidden")(state)
    reward = _scalar_head(features, spec, init, "reward")
    to_play = layers.Dense(spec.num_players, kernel_initializer=init(), name="to_play")(features)
    return keras.Model([hidden, action], [next_hidden, reward, to_play], name="dynamics")


def _conv_dynamics(spec: NetworkSpec, init: _Initializers,
                   hidden_shape: tuple[int, ...]) -> keras.Model:
    hidden = keras.Input(hidden_shape, name="hidden")
    action = keras.Input((), dtype="int32", name="action")
    height, width = hidden_shape[:2]
    # The action as one-hot planes: [B, H, W, A], the same at every cell.
    planes = layers.Lambda(lambda a: ops.broadcast_to(
        ops.one_hot(a, spec.num_actions)[:, None, None, :],
        (ops.shape(a)[0], height, width, spec.num_actions)), name="action_planes")(action)
    state = _residual_tower(_conv(layers.Concatenate()([hidden, planes]), spec.channels, init),
                            spec, init)
    features = layers.Flatten()(layers.ReLU()(_conv(state, 4, init, kernel=1)))
    features = layers.Dense(64, activation="relu", kernel_initializer=init())(features)
    return _dynamics_model(hidden, action, state, features, spec, init)


def _conv_prediction(spec: NetworkSpec, init: _Initializers,
                     hidden_shape: tuple[int, ...]) -> keras.Model:
    # As in the paper (and AlphaZero's heads): no tower of its own, a 1x1 convolution that
    # reduces the planes, then dense layers; the representation and dynamics towers do the work.
    hidden = keras.Input(hidden_shape, name="hidden")
    policy = layers.Flatten()(layers.ReLU()(_conv(hidden, 4, init, kernel=1)))
    policy = layers.Dense(spec.num_actions, kernel_initializer=init(), name="policy")(policy)
    value = layers.Flatten()(layers.ReLU()(_conv(hidden, 4, init, kernel=1)))
    value = layers.Dense(64, activation="relu", kernel_initializer=init())(value)
    return keras.Model(hidden, [policy, _scalar_head(value, spec, init, "value")],
                       name="prediction")


# ----- MLP (vector observations) -----

def _mlp(x, spec: NetworkSpec, init: _Initializers):
    for _ in range(spec.mlp_layers):
        x = layers.Dense(spec.hidden_size, activation="relu", kernel_initializer=init())(x)
    return x


def _mlp_representation(spec: NetworkSpec, init: _Initializers) -> keras.Model:
    observation = keras.Input(spec.observation_shape, name="observation")
    x = _mlp(layers.Flatten()(observation), spec, init)
    x = layers.Dense(spec.hidden_size, kernel_initializer=init())(x)
    hidden = layers.Lambda(_normalise_hidden, name="hidden")(x)
    return keras.Model(observation, hidden, name="representation")


def _mlp_dynamics(spec: NetworkSpec, init: _Initializers,
                  hidden_shape: tuple[int, ...]) -> keras.Model:
    hidden = keras.Input(hidden_shape, name="hidden")
    action = keras.Input((), dtype="int32", name="action")
    one_hot = layers.Lambda(lambda a: ops.one_hot(a, spec.num_actions), name="one_hot")(action)
    features = _mlp(layers.Concatenate()([hidden, one_hot]), spec, init)
    state = layers.Dense(spec.hidden_size, kernel_initializer=init())(features)
    if spec.residual_dynamics:
        state = layers.Add()([hidden, state])
    return _dynamics_model(hidden, action, state, features, spec, init)


def _mlp_prediction(spec: NetworkSpec, init: _Initializers,
                    hidden_shape: tuple[int, ...]) -> keras.Model:
    hidden = keras.Input(hidden_shape, name="hidden")
    x = _mlp(hidden, spec, init)
    policy = layers.Dense(spec.num_actions, kernel_initializer=init(), name="policy")(x)
    return keras.Model(hidden, [policy, _scalar_head(x, spec, init, "value")], name="prediction")


BUILDERS = {
    "resnet": (_conv_representation, _conv_dynamics, _conv_prediction),
    "mlp": (_mlp_representation, _mlp_dynamics, _mlp_prediction),
}


class MuZeroNetwork(keras.Model):
    """The three functions under one Keras model, so their weights save and load as one file."""

    def __init__(self, spec: NetworkSpec, seed: int = 0):
        super().__init__(name="muzero")
        if spec.network not in BUILDERS:
            raise ValueError(f"unknown network family {spec.network!r}; known: "
                             f"{', '.join(BUILDERS)}")
        build_representation, build_dynamics, build_prediction = BUILDERS[spec.network]
        init = _Initializers(seed)
        self.spec = spec
        self.representation = build_representation(spec, init)
        self.hidden_shape = tuple(self.representation.output.shape[1:])
        self.dynamics = build_dynamics(spec, init, self.hidden_shape)
        self.prediction = build_prediction(spec, init, self.hidden_shape)
        self.built = True

    def save_weights_file(self, path: str | os.PathLike) -> None:
        """Write `*.weights.h5` atomically, tagged with this network's spec."""
        path = os.fspath(path)
        if not path.endswith(".weights.h5"):
            raise ValueError(f"weights file name must end in .weights.h5, got {path!r}")
        folder = os.path.dirname(os.path.abspath(path))
        handle, temporary = tempfile.mkstemp(suffix=".weights.h5", dir=folder)
        os.close(handle)
        try:
            self.save_weights(temporary, overwrite=True)
            with h5py.File(temporary, "a") as file:
                file.attrs[METADATA_ATTRIBUTE] = self.spec.to_json()
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)

    def load_weights_file(self, path: str | os.PathLike) -> None:
        """Load weights saved by `save_weights_file`, refusing files of another game or shape."""
        path = os.fspath(path)
        try:
            with h5py.File(path, "r") as file:
                stored = file.attrs.get(METADATA_ATTRIBUTE)
                self._check_stored_sizes(file, path)
        except WeightsMismatchError:
            raise
        except Exception as error:  # a damaged file fails in libhdf5 in many ways: all its own
            raise WeightsMismatchError(f"{path}: not a readable HDF5 weights file ({error})") \
                from None
        if stored is None:
            raise WeightsMismatchError(f"{path}: no muzero metadata; not saved by muzero")
        try:
            stored = json.loads(stored)
            if not isinstance(stored, dict):
                raise TypeError
        except (ValueError, TypeError, RecursionError):
            raise WeightsMismatchError(f"{path}: its muzero metadata is not a JSON object") \
                from None
        expected = json.loads(self.spec.to_json())
        stored = {**{key: value for key, value in SCHEMA_1_LATER_FIELDS.items() if key in expected},
                  **stored}
        if stored.get("game") != expected["game"]:
            raise WeightsMismatchError(f"{path}: weights are for game {stored.get('game')!r}, "
                                       f"this network is for {expected['game']!r}")
        different = sorted(key for key in expected if stored.get(key) != expected[key])
        if different:
            details = ", ".join(f"{key}: file {stored.get(key)!r} vs network {expected[key]!r}"
                                for key in different)
            raise WeightsMismatchError(f"{path}: network shape differs ({details})")
        try:
            self.load_weights(path)
        except Exception as error:  # as above: whatever a damaged file makes the reader raise
            raise WeightsMismatchError(f"{path}: weights do not fit this network ({error})") \
                from None

    def _check_stored_sizes(self, file: h5py.File, path: str) -> None:
        """Refuse a file whose arrays, read whole, would take more than this network's weights
        (with room for the format's own arrays): a small compressed file can otherwise claim
        gigabytes, and loading reads every array before comparing shapes."""
        budget = 2 * sum(int(np.prod(w.shape)) * 8 for w in self.weights) + 1024 * 1024
        sizes: list[int] = []

        def visit(name: str, item) -> None:
            if isinstance(item, h5py.Dataset):
                sizes.append(int(np.prod(item.shape, dtype=np.float64)) * item.dtype.itemsize)

        file.visititems(visit)
        if sum(sizes) > budget:
            raise WeightsMismatchError(f"{path}: its arrays take {sum(sizes)} bytes, more than "
                                       f"this network's weights can ({budget})")


def network_for_game(plugin: GamePlugin, config: Config) -> MuZeroNetwork:
    """A freshly initialised network (seeded by `config.seed`) shaped for the plugin's game."""
    game = plugin.make_game(config, np.random.default_rng(config.seed))
    spec = NetworkSpec.from_config(config, game.observation_shape, game.num_actions,
                                   game.num_players)
    return MuZeroNetwork(spec, seed=config.seed)
