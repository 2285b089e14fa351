"""One frozen dataclass of a run's settings, validated at construction; its hyper-parameters are
saved as versioned JSON.

Every field is described once, here: its default (the paper's value where the paper gives one), a
help line and a check. The command line is built from these fields, so a new hyper-parameter is one
line in this file and nothing else.

Two kinds of field: hyper-parameters decide what is learned and are saved with a run (checkpoints,
the server's database); runtime options (`runtime=True`: threads, XLA, the inference queue, game
slots) decide how fast this machine runs it and are never saved, so a run resumed on another
machine uses that machine's flags. Saved JSON carries a `schema` number; `MIGRATIONS` turns an
older document into the current one, so every checkpoint ever written still loads.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], "str | None"]


class ConfigError(ValueError):
    """A hyper-parameter has a bad value; the message names the field."""


def _at_least(low: float) -> Check:
    return lambda value: None if value >= low else f"must be >= {low}"


def _between(low: float, high: float) -> Check:
    return lambda value: None if low <= value <= high else f"must be in [{low}, {high}]"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be > 0"


def _one_of(*choices: str) -> Check:
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _json_object(value: dict) -> str | None:
    if not all(isinstance(key, str) for key in value):
        return "keys must be strings"
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        return f"must be JSON-serialisable ({error})"
    return None


def _param(default: Any, help: str, check: Check | None = None, flag: str | None = None,
           runtime: bool = False) -> Any:
    """Declare a field: default, one help line, an optional check, an optional CLI flag name, and
    whether it is a runtime option (not saved with the run)."""
    metadata = {"help": help, "check": check, "flag": flag, "runtime": runtime}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


SCHEMA = 2  # version of the saved JSON; raise it with a migration when a saved field changes

# Fields added while schema 1 was current, with the behaviour a document without them was trained
# with (not always today's default). The network's own metadata (network.py) uses it too.
SCHEMA_1_LATER_FIELDS = {"residual_dynamics": False, "search": "muzero",
                         "samples_per_position": 0.0}


@dataclasses.dataclass(frozen=True)
class Config:
    """Every hyper-parameter of a run. Build one with a game's `make_config()` and `replace()`."""

    # --- what is played ---
    game: str = _param("", "game name (games/NAME.py) or module path of a game", _non_empty)
    seed: int = _param(0, "seed for every random generator of the run", _at_least(0))
    game_options: dict = _param({}, "game-specific options as a JSON object", _json_object)

    # --- network ---
    network: str = _param("resnet", "network family: resnet (board planes) or mlp (vectors)",
                          _one_of("resnet", "mlp"))
    channels: int = _param(32, "resnet: channels of the residual tower", _at_least(1))
    num_blocks: int = _param(2, "resnet: residual blocks in the representation and in the "
                             "dynamics tower", _at_least(0))
    hidden_size: int = _param(64, "mlp: width of the hidden state and of every layer", _at_least(1))
    mlp_layers: int = _param(2, "mlp: hidden layers in each function", _at_least(1))
    residual_dynamics: bool = _param(True, "mlp: the dynamics adds its output to the hidden "
                                     "state it was given, so what a move leaves unchanged "
                                     "carries over (false: a plain MLP)")
    scalar_support_size: int = _param(
        0, "0: values and rewards are scalars trained with MSE; K > 0: categorical support of "
        "2K+1 atoms over h(x), trained with cross-entropy", _at_least(0))

    # --- search (MuZero paper, appendix B and pseudocode) ---
    num_simulations: int = _param(50, "MCTS simulations per move", _at_least(1))
    discount: float = _param(1.0, "reward discount per move", _between(0.0, 1.0))
    selection_rule: str = _param(
        "ucb", "ucb: Q + P*sqrt(2*N)/(1+n); puct: the paper's rule with pb_c_init and pb_c_base "
        "(ucb is not the paper's default: every built-in game and derived config was tuned and "
        "measured with it, puct was not compared on them)",
        _one_of("ucb", "puct"))
    pb_c_init: float = _param(1.25, "pUCT c1 (paper: 1.25)", _positive)
    pb_c_base: float = _param(19652.0, "pUCT c2 (paper: 19652)", _positive)
    root_dirichlet_alpha: float = _param(0.3, "Dirichlet noise alpha at the root (paper: 0.3 for "
                                         "chess, 0.25 for Atari)", _positive)
    root_exploration_fraction: float = _param(0.25, "share of Dirichlet noise in the root prior",
                                              _between(0.0, 1.0))
    freezing_moves: int = _param(30, "moves per game sampled from visit counts before the agent "
                                 "plays the most visited move", _at_least(0))
    temperature: float = _param(1.0, "visit-count temperature while sampling", _positive)
    temperature_schedule: str = _param(
        "constant", "constant: `temperature` all run; paper: the paper's Atari schedule, "
        "temperature x1 for the first half of num_steps, x0.5 to three quarters, x0.25 after, "
        "so self-play comes closer to the evaluated (most visited) play as training ends",
        _one_of("constant", "paper"))
    random_move_probability: float = _param(
        0.0, "self-play: chance that a move is uniformly random instead of the search's choice, "
        "so training meets the positions a weak opponent creates", _between(0.0, 1.0))
    known_value_min: float = _param(
        0.0, "lower bound of Q known in advance, where Q is normalised from (the paper's "
        "KnownBounds; board games: -1); equal to known_value_max: no bounds, each tree's "
        "own min-max")
    known_value_max: float = _param(0.0, "upper bound of Q known in advance (board games: 1)")
    q_normalisation: str = _param(
        "tree", "how selection scales Q to [0, 1]: tree: by the smallest and largest Q in the "
        "whole tree (the paper's pseudocode, within known_value_min/max where given); node: at "
        "each node by its own mean value and its visited children's Q (as DeepMind's mctx), "
        "for games whose values shrink with the moves left, where the tree's range mostly "
        "measures depth and the gaps between sibling moves vanish in it (both searches: with "
        "gumbel it scales sigma's completed Q)",
        _one_of("tree", "node"))
    node_span_floor: float = _param(
        0.0, "with q_normalisation = node: the smallest span a node's Q is scaled by, in value "
        "units. At 0 any gap between sibling moves, however small against the value's error, "
        "is stretched to the whole [0, 1], and the search acts on its sign alone: with two "
        "moves, the worse one's share of the visits is the same for a gap of 0.01 as of 1",
        _at_least(0.0))
    search: str = _param(
        "muzero", "muzero: Dirichlet noise at the root, selection_rule at every node, visit "
        "shares as the policy target; gumbel: Gumbel MuZero (Danihelka et al. 2022): "
        "Gumbel-top-m root actions and sequential halving, the improved policy "
        "softmax(logits + sigma(completed Q)) as the target and below the root",
        _one_of("muzero", "gumbel"))
    gumbel_considered_actions: int = _param(16, "gumbel: root actions considered, m (paper: 16)",
                                            _at_least(1))
    gumbel_c_visit: float = _param(50.0, "gumbel: c_visit of sigma(q) = (c_visit + max "
                                   "visits) * c_scale * q (paper: 50)", _at_least(0.0))
    gumbel_c_scale: float = _param(1.0, "gumbel: c_scale of sigma (paper: 1)", _positive)

    # --- runtime options: how fast this machine plays (not saved with the run) ---
    num_envs: int = _param(64, "game slots played in lockstep by self-play", _at_least(1),
                           flag="--envs", runtime=True)
    num_actors: int = _param(1, "self-play threads sharing one inference queue", _at_least(1),
                             runtime=True)
    inference_batch_size: int = _param(256, "largest batch the inference queue merges",
                                       _at_least(1), runtime=True)
    inference_wait_ms: float = _param(2.0, "longest the inference queue waits to fill a batch",
                                      _at_least(0.0), runtime=True)
    inference_workers: int = _param(1, "network calls the inference queue may run at once",
                                    _at_least(1), runtime=True)
    tf_threads: int = _param(0, "TensorFlow intra-op threads for the process (0: one per core); "
                             "applied once at start-up", _at_least(0), runtime=True)
    jit_compile: bool = _param(True, "compile inference with XLA: about 2x less time per call at "
                               "small batches on a CPU, 0.6 s to compile each batch bucket",
                               runtime=True)

    # --- replay (MuZero appendix G: prioritized replay with alpha = beta = 1) ---
    replay_capacity: int = _param(100_000, "positions kept in the replay buffer: the most "
                                  "recent whole games that fit", _at_least(1))
    num_unroll_steps: int = _param(5, "K: dynamics steps unrolled per training sample (paper: 5)",
                                   _at_least(1))
    td_steps: int = _param(10, "n of the n-step value target; at least the game length gives "
                           "the final outcome", _at_least(1))
    prioritized_replay: bool = _param(True, "sample positions by priority (else uniformly)")
    priority_alpha: float = _param(1.0, "priority exponent alpha (paper: 1)", _at_least(0.0))
    priority_beta: float = _param(1.0, "importance-weight exponent beta (paper: 1)",
                                  _between(0.0, 1.0))
    augment_symmetries: bool = _param(True, "train on a random symmetry of each sample when the "
                                      "game declares its symmetries")
    agent_symmetries: bool = _param(
        True, "the agent (evaluation, play, load_agent) searches every symmetric view of a "
        "position when the game declares its symmetries and plays the move most visited over "
        "all views: the network's errors differ between views (tic-tac-toe: the exact value "
        "kept in 98.9-99.2% of positions with one search, 99.4-99.8% with eight; "
        "docs/experiments.md); self-play keeps one search")
    reanalyse_ratio: float = _param(
        0.0, "MuZero Reanalyse: stored positions searched again with the newest weights per "
        "position played, their policy and value targets replaced by the new search's (0: "
        "off; the games with the oldest targets first; muzero/loops.py)", _at_least(0.0))

    # --- learner ---
    batch_size: int = _param(256, "positions per training batch", _at_least(1))
    optimizer: str = _param("adam", "adam, or sgd with momentum (the paper's; adam at 3e-3 is what "
                            "every result here was measured with, sgd was not compared)",
                            _one_of("adam", "sgd"))
    learning_rate: float = _param(3e-3, "initial learning rate (paper, sgd: 0.05 Atari, 0.1 "
                                  "board games)", _positive)
    lr_decay: float = _param(0.1, "learning rate at the end of the run, as a fraction of the "
                             "initial one (exponential decay over num_steps)", _between(0.0, 1.0))
    momentum: float = _param(0.9, "sgd: momentum (paper: 0.9)", _between(0.0, 1.0))
    weight_decay: float = _param(1e-4, "L2 penalty on every weight (paper: 1e-4)",
                                 _at_least(0.0))
    max_grad_norm: float = _param(5.0, "clip gradients to this global norm", _positive)
    value_loss_weight: float = _param(1.0, "weight of the value loss (paper's Reanalyse: 0.25)",
                                      _at_least(0.0))

    # --- run length ---
    num_steps: int = _param(2000, "training steps of the run (at least one: a run that trains "
                            "nothing saves no agent)", _at_least(1))
    num_games: int = _param(2000, "self-play games of the run; training steps are spread over "
                            "them in proportion", _at_least(1))
    games_per_iteration: int = _param(256, "self-play games between two training phases",
                                      _at_least(1))
    samples_per_position: float = _param(
        0.0, "0: training steps spread over num_games in proportion to games played; > 0: "
        "steps follow positions played, this many batch samples per position (the replay "
        "ratio), for episodes whose length changes as the agent learns (muzero/pace.py)",
        _at_least(0.0))
    checkpoint_interval: int = _param(500, "training steps between checkpoints (each one "
                                      "evaluated)", _at_least(1))
    num_eval_games: int = _param(100, "evaluation games against each opponent", _at_least(0))
    agent_averaging: int = _param(
        0, "0: the agent is the trained weights (the paper's); N > 1: the agent evaluated, "
        "saved and played is an exponential moving average of the trained weights over about "
        "the last N train steps (momentum 1 - 1/N); self-play and training use the trained "
        "weights either way (muzero/training.py)", _at_least(0))
    agent_selection: str = _param(
        "best", "which checkpoint plays for the run (evaluate, play, load_agent): best: the "
        "best evaluated (single-player: mean return; else the worst points rate over opponents "
        "and seats; later on ties; muzero/selection.py); last: the last",
        _one_of("best", "last"))

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            _check_type(field.name, value, hints[field.name])
            check = field.metadata["check"]
            problem = check(value) if check else None
            if problem:
                raise ConfigError(f"config field '{field.name}' {problem}, got {value!r}")
        if self.node_span_floor > 0.0 and self.q_normalisation != "node":
            raise ConfigError(f"config field 'node_span_floor' applies to q_normalisation "
                              f"'node' only, got {self.node_span_floor!r} with "
                              f"{self.q_normalisation!r}")
        if self.known_value_max < self.known_value_min:
            raise ConfigError(f"config field 'known_value_max' must be >= known_value_min "
                              f"({self.known_value_min}), got {self.known_value_max!r}")

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed, validated like a new config."""
        unknown = sorted(set(changes) - {field.name for field in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def hyper_parameters(self) -> dict[str, Any]:
        """The fields saved with a run: every field but the runtime options."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                if not field.metadata["runtime"]}

    def to_json(self) -> str:
        """The hyper-parameters with the schema number (what checkpoints and the server keep)."""
        return json.dumps({"schema": SCHEMA, **self.hyper_parameters()}, indent=2,
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Config:
        """A saved config of any schema, migrated to today's; runtime options at their
        defaults (apply this machine's with `replace`)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"config is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError("config JSON must be an object of field: value")
        version = data.pop("schema", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ConfigError(f"config schema must be a whole number >= 1, got {version!r}")
        if version > SCHEMA:
            raise ConfigError(f"config schema {version} is newer than this version of muzero "
                              f"reads ({SCHEMA}); upgrade muzero")
        for old in range(version, SCHEMA):
            data = MIGRATIONS[old](data)
        saved_runtime = sorted(set(data) & RUNTIME_FIELDS)
        if saved_runtime:
            raise ConfigError(f"config schema {SCHEMA} does not save runtime options, got "
                              f"{', '.join(saved_runtime)}")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        unknown = sorted(set(data) - {field.name for field in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**data)


RUNTIME_FIELDS = frozenset(field.name for field in dataclasses.fields(Config)
                           if field.metadata["runtime"])


def _from_schema_1(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 (until 2026-11-30) saved runtime options beside the hyper-parameters and may
    lack the fields added while it was current."""
    kept = {name: value for name, value in data.items() if name not in RUNTIME_FIELDS}
    return {**SCHEMA_1_LATER_FIELDS, **kept}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_schema_1}


def _check_type(name: str, value: Any, expected: Any) -> None:
    """Reject wrong types by name: an int for a float is fine, a bool for an int is not."""
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ConfigError(f"config field '{name}' must be finite, got {value!r}")
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, expected)
    if not ok:
        type_name = getattr(expected, "__name__", str(expected))
        raise ConfigError(f"config field '{name}' must be of type {type_name}, got {value!r}")
