"""A trained network that plays: deterministic batched search over any number of game objects.

`Agent.search_games` runs one search for many games at once (evaluation uses it for every game
whose agent is to move); `Agent.select_action` is the `Player` protocol for one game. There is no
exploration noise and the most visited move is played, so the same position gives the same move.
A game that declares symmetries (a board that looks the same rotated or mirrored) is searched in
every view at once, and the move played is the one most visited over all views
(`agent_symmetries`): the network's mistakes are not symmetric, so the views outvote a view's
mistake, as AlphaGo averaged its evaluations over the board's eight views.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from muzero.batching.inference import inference_for_game
from muzero.checkpoint import AGENT, Checkpoint, load_checkpoint
from muzero.config import Config
from muzero.game import Game
from muzero.plugins import GamePlugin, load_game
from muzero.search.batched import NumbaTree
from muzero.search.mcts import MCTS, SearchResult
from muzero.search.model import Model
from muzero.search.tree import SearchSettings
from muzero.symmetry import Augmentation, symmetries_from_plugin, with_identity


class Agent:
    """Plays with `model` and the config's search settings; satisfies `muzero.Player`."""

    def __init__(self, plugin: GamePlugin, config: Config, model: Model, max_batch: int = 1024):
        self.plugin = plugin
        self.config = config
        self.model = model
        self.max_batch = max_batch
        self._mcts: MCTS | None = None
        self._view_maps: Augmentation | None = None
        self._sizes: tuple | None = None  # (observation shape, moves, players) of its game

    def _search(self, rows: int, num_actions: int, num_players: int) -> MCTS:
        """A search with room for `rows` trees, grown (never shrunk) as larger batches come."""
        mcts = self._mcts
        if mcts is None or mcts.tree.batch_size < rows or mcts.tree.num_actions != num_actions:
            settings = replace(SearchSettings.from_config(self.config, add_noise=False),
                               freezing_moves=0)  # always the most visited move
            size = max(rows, mcts.tree.batch_size if mcts is not None else 0)
            tree = NumbaTree(size, num_actions, num_players, settings)
            self._mcts = MCTS(tree, np.random.default_rng(0))
        return self._mcts

    def _views(self, game: Game) -> Augmentation | None:
        """The views searched for each position: None for one (the position as it is)."""
        if self._view_maps is None:
            found = (symmetries_from_plugin(self.plugin, self.config)
                     if self.config.agent_symmetries else [])
            self._view_maps = Augmentation(
                with_identity(found, game.observation_shape, game.num_actions),
                game.observation_shape, game.num_actions)
        return self._view_maps if self._view_maps.count > 1 else None

    def search_games(self, games: Sequence[Game]) -> SearchResult:
        """One batched search for the player to move in each game (none may be over)."""
        if not games:
            raise ValueError("search_games needs at least one game")
        self._check_sizes(games)
        first = games[0]
        views = self._views(first)
        trees_per_game = views.count if views else 1
        per_chunk = max(1, self.max_batch // trees_per_game)
        mcts = self._search(min(len(games), per_chunk) * trees_per_game, first.num_actions,
                            first.num_players)
        parts = []
        for start in range(0, len(games), per_chunk):
            chunk = games[start:start + per_chunk]
            observations = np.stack([game.observation() for game in chunk])
            legal = np.stack([game.legal_actions() for game in chunk])
            to_play = np.array([game.to_play() for game in chunk], dtype=np.int32)
            if views is None:
                parts.append(mcts.run(self.model, observations, legal, to_play,
                                      np.zeros(len(chunk), np.int32)))
            else:
                parts.append(self._search_views(mcts, views, observations, legal, to_play))
        if len(parts) == 1:
            return parts[0]
        return SearchResult(*(np.concatenate(fields) for fields in zip(*parts)))

    def _check_sizes(self, games: Sequence[Game]) -> None:
        """A game of another kind would reach the network as a wrongly shaped array: name the
        mismatch in the game's own terms instead."""
        if self._sizes is None:
            own = self.plugin.make_game(self.config, np.random.default_rng(0))
            self._sizes = _sizes(own)
        for game in games:
            sizes = _sizes(game)
            if sizes != self._sizes:
                raise ValueError(f"this agent plays {self.config.game} "
                                 f"({_described(self._sizes)}); got a {type(game).__name__} "
                                 f"with {_described(sizes)}")

    def _search_views(self, mcts: MCTS, views: Augmentation, observations: np.ndarray,
                      legal: np.ndarray, to_play: np.ndarray) -> SearchResult:
        """One search per view of each position, in one batch (view-major); the views' visit
        shares (or Gumbel's improved policies) added in the original moves, their root values
        averaged, and the move with the largest sum played (ties to the lowest index)."""
        count, batch = views.count, len(observations)
        chosen = np.repeat(np.arange(count), batch)
        result = mcts.run(self.model,
                          views.observations(np.concatenate([observations] * count), chosen),
                          views.masks(np.concatenate([legal] * count), chosen),
                          np.tile(to_play, count), np.zeros(count * batch, np.int32))
        policy = views.restore(result.policy, chosen).reshape(count, batch, -1).mean(axis=0)
        root_value = result.root_value.reshape(count, batch, -1).mean(axis=0)
        actions = np.where(legal, policy, -1.0).argmax(axis=1).astype(result.actions.dtype)
        return SearchResult(actions, policy.astype(result.policy.dtype),
                            root_value.astype(result.root_value.dtype))

    def select_action(self, game: Game) -> int:
        """The agent's move in `game`'s current position (search included, deterministic)."""
        if game.terminal():
            raise ValueError("the game is over: there is no move to select")
        return int(self.search_games([game]).actions[0])


def _sizes(game: Game) -> tuple[tuple[int, ...], int, int]:
    return tuple(game.observation_shape), int(game.num_actions), int(game.num_players)


def _described(sizes: tuple[tuple[int, ...], int, int]) -> str:
    return f"observations {sizes[0]}, {sizes[1]} moves, {sizes[2]} player(s)"


def load_agent(checkpoint: str | os.PathLike | Checkpoint, max_batch: int = 1024) -> Agent:
    """The agent of a checkpoint folder, of a run folder (its `agent` checkpoint: the best
    evaluated, muzero/selection.py), or of a `Checkpoint` already read.

    Raises `CheckpointError` / `WeightsMismatchError` naming what is wrong with the files.
    """
    found = (checkpoint if isinstance(checkpoint, Checkpoint)
             else load_checkpoint(checkpoint, AGENT))
    return agent_with_weights(found.config, found.agent_weights_path, max_batch)


def agent_with_weights(config: Config, weights_path: str | os.PathLike,
                       max_batch: int = 1024) -> Agent:
    """The agent of `config`'s game playing the weights file at `weights_path` (a checkpoint's,
    or the weights an asynchronous run's server serves as its agent)."""
    plugin = load_game(config.game)
    inference = inference_for_game(plugin, config)
    inference.network.load_weights_file(weights_path)
    return Agent(plugin, config, inference, max_batch)
