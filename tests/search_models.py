"""Small exact and random models that implement the search's Model protocol, for tests."""

from __future__ import annotations

import numpy as np

from games.tictactoe import EMPTY, minimax_value, winner
from muzero.search.model import InitialOutput, RecurrentOutput

OVER = 9  # hidden[:, OVER] = 1 once the game has ended (absorbing state)


class TicTacToeOracle:
    """The true dynamics of tic-tac-toe as a model; hidden = 9 cells (0, 1, 2) and an over flag.

    With `perfect_values`, the value is the exact minimax value; otherwise it is 0 and only the
    rewards inform the search, so finding a block needs real look-ahead. An occupied cell loses.
    With `legal_priors`, the policy puts (almost) no prior on occupied cells, as a trained policy
    learns to; otherwise priors are uniform over all nine cells.
    """

    def __init__(self, perfect_values: bool, legal_priors: bool = False):
        self.perfect_values = perfect_values
        self.legal_priors = legal_priors

    def _logits(self, hidden: np.ndarray) -> np.ndarray:
        if not self.legal_priors:
            return np.zeros((len(hidden), 9), np.float32)
        return np.where(hidden[:, :9] == EMPTY, 0.0, -30.0).astype(np.float32)

    def _values(self, board: tuple[int, ...], over: bool) -> np.ndarray:
        player = 0 if board.count(1) == board.count(2) else 1
        value = minimax_value(board) if self.perfect_values and not over else 0
        values = np.zeros(2, np.float32)
        values[player], values[1 - player] = value, -value
        return values

    def initial_inference(self, observations):
        batch = len(observations)
        hidden = np.zeros((batch, 10), np.float32)
        hidden[:, :9] = (observations[..., 0] + 2 * observations[..., 1]).reshape(batch, 9)
        values = np.stack([self._values(tuple(int(c) for c in h[:9]), False) for h in hidden])
        return InitialOutput(hidden, values, self._logits(hidden))

    def recurrent_inference(self, hidden, actions):
        batch = len(hidden)
        new_hidden = hidden.copy()
        rewards = np.zeros((batch, 2), np.float32)
        values = np.zeros((batch, 2), np.float32)
        to_play = np.zeros(batch, np.int32)
        for b in range(batch):
            board = [int(c) for c in hidden[b, :9]]
            player = 0 if board.count(1) == board.count(2) else 1
            over = bool(hidden[b, OVER])
            if not over:
                if board[actions[b]] != EMPTY:
                    rewards[b, player], rewards[b, 1 - player] = -1, 1
                    over = True
                else:
                    board[actions[b]] = player + 1
                    if winner(tuple(board)) is not None:
                        rewards[b, player], rewards[b, 1 - player] = 1, -1
                    over = winner(tuple(board)) is not None or EMPTY not in board
            new_hidden[b, :9], new_hidden[b, OVER] = board, over
            values[b] = self._values(tuple(board), over)
            to_play[b] = 1 - player
        return RecurrentOutput(new_hidden, rewards, values, to_play, self._logits(new_hidden))


class RandomModel:
    """A fixed random function of its inputs: deterministic, so two searches can be compared."""

    def __init__(self, observation_size: int, num_actions: int, num_players: int, seed: int,
                 hidden_size: int = 6):
        rng = np.random.default_rng(seed)
        self.encode = rng.normal(size=(observation_size, hidden_size))
        self.transition = rng.normal(size=(hidden_size, hidden_size))
        self.action_effect = rng.normal(size=(num_actions, hidden_size))
        self.policy_head = rng.normal(size=(hidden_size, num_actions))
        self.value_head = rng.normal(size=(hidden_size, num_players))
        self.reward_head = rng.normal(size=(hidden_size, num_players))
        self.to_play_head = rng.normal(size=(hidden_size, num_players))

    def _heads(self, hidden):
        return ((hidden @ self.value_head).astype(np.float32),
                (hidden @ self.policy_head).astype(np.float32))

    def initial_inference(self, observations):
        hidden = np.tanh(observations.reshape(len(observations), -1) @ self.encode)
        value, logits = self._heads(hidden)
        return InitialOutput(hidden.astype(np.float32), value, logits)

    def recurrent_inference(self, hidden, actions):
        new_hidden = np.tanh(hidden @ self.transition + self.action_effect[actions])
        value, logits = self._heads(new_hidden)
        return RecurrentOutput(new_hidden.astype(np.float32),
                               np.tanh(new_hidden @ self.reward_head).astype(np.float32), value,
                               np.argmax(new_hidden @ self.to_play_head, axis=1).astype(np.int32),
                               logits)
