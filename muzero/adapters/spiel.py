"""OpenSpiel games as games: `--game spiel:connect_four`, parameters from `--game-options`.

Turn-based, perfect-information games with any number of players. The observation is the
`observation_tensor` of the player to move, shaped as `observation_tensor_shape()` with one plane
per player appended along the first (channel) axis saying who moves (see `PlayerPlanes`); legal
moves come from `legal_actions_mask`; every player's reward after every move from `rewards()`.
Chance nodes are resolved inside the adapter, sampled from their outcome distribution with the
run's generator, so the agent only ever sees decision nodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from muzero.adapters.gym import UnsupportedEnvironmentError
from muzero.game import Game, RandomPlayer

PREFIX = "spiel:"
#: the adapter's own option (not a game parameter): simulations of OpenSpiel's MCTS opponent
MCTS_SIMULATIONS_OPTION = "mcts_simulations"
DEFAULT_MCTS_SIMULATIONS = 1000
#: exact play is offered for two-player zero-sum deterministic games at most this long
MINIMAX_MAX_GAME_LENGTH = 12


def game_parameters(options: dict[str, Any]) -> dict[str, Any]:
    """The options that are OpenSpiel game parameters (the adapter's own taken out)."""
    return {key: value for key, value in options.items() if key != MCTS_SIMULATIONS_OPTION}


def load_spiel_game(name: str, options: dict[str, Any]):
    """`pyspiel.load_game`, refusing what the adapter cannot play with a message saying why."""
    import pyspiel
    try:
        game = pyspiel.load_game(name, game_parameters(options))
    except pyspiel.SpielError as error:
        raise UnsupportedEnvironmentError(f"spiel:{name}: {str(error).strip()}") from None
    kind = game.get_type()
    if kind.dynamics != pyspiel.GameType.Dynamics.SEQUENTIAL:
        raise UnsupportedEnvironmentError(
            f"spiel:{name}: {kind.dynamics.name.lower()} games are not supported: the adapter "
            f"plays turn-based games, one player moving at a time")
    if kind.information != pyspiel.GameType.Information.PERFECT_INFORMATION:
        raise UnsupportedEnvironmentError(
            f"spiel:{name}: {kind.information.name.lower().replace('_', ' ')} games are not "
            f"supported: the adapter plays perfect-information games (MuZero's search assumes "
            f"the observation is the state)")
    if not kind.provides_observation_tensor:
        raise UnsupportedEnvironmentError(f"spiel:{name}: the game provides no observation "
                                          f"tensor")
    return game


def has_chance(game) -> bool:
    import pyspiel
    return game.get_type().chance_mode != pyspiel.GameType.ChanceMode.DETERMINISTIC


def terminal_rewards(game) -> bool:
    import pyspiel
    return game.get_type().reward_model == pyspiel.GameType.RewardModel.TERMINAL


class PlayerPlanes:
    """Appends one constant plane per player, the mover's set to 1, along the first axis.

    Why: many OpenSpiel tensors are absolute (connect four's planes are "player 0's pieces",
    "player 1's pieces", "empty"), so who moves is only implied, e.g. by the parity of the piece
    count. MuZero's dynamics must predict the next mover from the hidden state alone; without the
    planes its to-play head stayed at chance for a whole 30-minute connect-four run, and the
    search backed up the wrong player's value below the root (docs/experiments.md). One-player
    games get no plane. A rank-1 tensor gets one number per player.
    """

    def __init__(self, tensor_shape: tuple[int, ...], num_players: int):
        self.tensor_shape = tensor_shape
        self.num_players = num_players if num_players > 1 else 0
        self.shape = (tensor_shape[0] + self.num_players,) + tensor_shape[1:]

    def __call__(self, tensor: np.ndarray, player: int) -> np.ndarray:
        planes = np.zeros((self.num_players,) + self.tensor_shape[1:], np.float32)
        if self.num_players:
            planes[player] = 1.0
        return np.concatenate([tensor.reshape(self.tensor_shape), planes])


class SpielGame(Game):
    """One OpenSpiel state behind the game contract."""

    def __init__(self, name: str, options: dict[str, Any], rng: np.random.Generator):
        self.name = name
        self.game = load_spiel_game(name, options)
        self.num_players = self.game.num_players()
        self.num_actions = self.game.num_distinct_actions()
        self._planes = PlayerPlanes(tuple(self.game.observation_tensor_shape()),
                                    self.num_players)
        self.observation_shape = self._planes.shape
        self.time_limit = self.game.max_game_length()
        if has_chance(self.game):
            # the record does not carry the chance outcomes, so its moves cannot be replayed
            self.replayable_rules = False
            if terminal_rewards(self.game):
                self.chance_reward_bounds = (self.game.min_utility(), self.game.max_utility())
        self._rng = rng
        self.reset()

    def reset(self) -> None:
        self.state = self.game.new_initial_state()
        self._resolve_chance()

    def _resolve_chance(self) -> np.ndarray:
        """Sample chance nodes until a player moves; their rewards [P] (usually none)."""
        rewards = np.zeros(self.num_players, np.float32)
        while self.state.is_chance_node():
            outcomes, probabilities = zip(*self.state.chance_outcomes())
            self.state.apply_action(int(self._rng.choice(outcomes, p=probabilities)))
            rewards += np.asarray(self.state.rewards(), np.float32)
        return rewards

    def legal_actions(self) -> np.ndarray:
        if self.state.is_terminal():
            return np.zeros(self.num_actions, bool)
        return np.asarray(self.state.legal_actions_mask(self.state.current_player()), bool)

    def to_play(self) -> int:
        return max(int(self.state.current_player()), 0)  # 0 once over (a terminal code < 0)

    def terminal(self) -> bool:
        return self.state.is_terminal()

    def observation(self) -> np.ndarray:
        return self.observe(self.state)

    def observe(self, state) -> np.ndarray:
        """The observation of any state of this game (symmetries.py tries them on twins)."""
        player = max(int(state.current_player()), 0)
        return self._planes(np.asarray(state.observation_tensor(player), np.float32), player)

    def render(self) -> str:
        return str(self.state)

    def _apply(self, action: int) -> np.ndarray:
        self.state.apply_action(action)
        rewards = np.asarray(self.state.rewards(), np.float32)
        return rewards + self._resolve_chance()


class MctsPlayer:
    """OpenSpiel's own MCTS bot (UCT with random rollouts), as an outside yardstick."""

    def __init__(self, game: SpielGame, simulations: int, rng: np.random.Generator):
        import pyspiel
        evaluator = pyspiel.RandomRolloutEvaluator(1, int(rng.integers(2**31)))
        self._bot = pyspiel.MCTSBot(game.game, evaluator, 2.0, simulations, 1000, True,
                                    int(rng.integers(2**31)), False)

    def select_action(self, game: SpielGame) -> int:
        return int(self._bot.step(game.state))


class MinimaxPlayer:
    """Exact play in small two-player zero-sum deterministic games: a memoised negamax over
    the game's states; a random move among those of best value."""

    def __init__(self, rng: np.random.Generator):
        self._rng = rng
        self._values: dict[str, float] = {}

    def _value(self, state) -> float:
        """The value of `state` for the player to move (its return under best play)."""
        if state.is_terminal():
            return 0.0  # the rewards are counted on the move that ends the game
        key = state.serialize()
        if key not in self._values:
            self._values[key] = max(self._move_value(state, action)
                                    for action in state.legal_actions())
        return self._values[key]

    def _move_value(self, state, action: int) -> float:
        player = state.current_player()
        child = state.child(action)
        gained = child.rewards()[player]
        if child.is_terminal():
            return gained
        sign = 1.0 if child.current_player() == player else -1.0
        return gained + sign * self._value(child)

    def select_action(self, game: SpielGame) -> int:
        state = game.state
        actions = state.legal_actions()
        values = np.array([self._move_value(state, action) for action in actions])
        best = np.flatnonzero(values >= values.max() - 1e-9)
        return int(actions[int(self._rng.choice(best))])


def opponents(name: str) -> dict:
    """Random play and OpenSpiel's MCTS for every game; exact play where it is cheap (judged on
    the game with its default parameters)."""
    import pyspiel
    game = load_spiel_game(name, {})

    def mcts(config, rng: np.random.Generator) -> MctsPlayer:
        simulations = int(config.game_options.get(MCTS_SIMULATIONS_OPTION,
                                                  DEFAULT_MCTS_SIMULATIONS))
        return MctsPlayer(SpielGame(name, config.game_options, rng), simulations, rng)

    players = {"random": lambda config, rng: RandomPlayer(rng), "mcts": mcts}
    if (game.num_players() == 2 and game.get_type().utility == pyspiel.GameType.Utility.ZERO_SUM
            and not has_chance(game) and game.max_game_length() <= MINIMAX_MAX_GAME_LENGTH):
        players["minimax"] = lambda config, rng: MinimaxPlayer(rng)
    return players
