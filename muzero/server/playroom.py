"""Games between people in a browser and the server's latest network.

Each game lives in memory under a random id (the oldest are dropped past `max_games`). The
agent is the deterministic `Agent` on its own copy of the network, reloaded whenever a newer
weights version is stored; each of its moves is reported with the search's policy and value.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from muzero.agent import Agent
from muzero.batching.inference import BatchedInference
from muzero.config import Config
from muzero.game import Game, GameError
from muzero.network import network_for_game
from muzero.plugins import GamePlugin
from muzero.server.versions import WeightsVersion


class PlayError(ValueError):
    """A bad request about a browser game (unknown id, illegal move, bad seat)."""


class PlayRoom:
    def __init__(self, plugin: GamePlugin, config: Config,
                 latest: Callable[[], WeightsVersion | None], max_games: int = 1000):
        self.plugin = plugin
        self.config = config
        self._latest = latest
        self._network = network_for_game(plugin, config)
        self._agent = Agent(plugin, config, BatchedInference(self._network, jit_compile=False))
        self._version = 0
        self._games: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()
        self._rng = np.random.default_rng()
        self.max_games = max_games

    def new_game(self, seat: int) -> dict:
        game = self.plugin.make_game(self.config, self._rng)
        if not isinstance(seat, int) or not 0 <= seat < game.num_players:
            raise PlayError(f"seat must be an integer in [0, {game.num_players}), got {seat!r}")
        game_id = secrets.token_hex(8)
        record = {"game": game, "seat": seat, "totals": np.zeros(game.num_players),
                  "agent_moves": []}
        with self._lock:
            self._games[game_id] = record
            while len(self._games) > self.max_games:
                self._games.popitem(last=False)
            self._agent_moves(record)
            return self._state(game_id, record)

    def move(self, game_id: str, action) -> dict:
        with self._lock:
            record = self._games.get(game_id)
            if record is None:
                raise LookupError(f"no game {game_id[:40]!r} (finished long ago or never "
                                  f"started)")
            game: Game = record["game"]
            if game.terminal():
                raise PlayError("the game is over")
            if game.to_play() != record["seat"]:
                raise PlayError("it is not your turn")
            if isinstance(action, bool) or not isinstance(action, int):
                raise PlayError(f"action must be an integer, got {action!r}")
            try:
                record["totals"] += game.step(action)
            except GameError as error:
                raise PlayError(str(error)) from None
            record["agent_moves"] = []
            self._agent_moves(record)
            return self._state(game_id, record)

    def _refresh(self) -> None:
        latest = self._latest()
        if latest is not None and latest.version != self._version:
            self._network.load_weights_file(latest.path)
            self._version = latest.version

    def _search(self, game: Game) -> dict:
        self._refresh()
        result = self._agent.search_games([game])
        action = int(result.actions[0])
        return {"player": game.to_play(), "action": action, "label": self._label(game, action),
                "policy": [round(float(p), 3) for p in result.policy[0]],
                "value": [round(float(v), 3) for v in result.root_value[0]],
                "version": self._version}

    def _agent_moves(self, record: dict) -> None:
        """The agent plays every seat but the person's until the person is to move; then it
        searches the person's position too, as a hint (the only view of it in a solo game)."""
        game: Game = record["game"]
        while not game.terminal() and game.to_play() != record["seat"]:
            move = self._search(game)
            record["agent_moves"].append(move)
            record["totals"] += game.step(move["action"])
        record["hint"] = None if game.terminal() else self._search(game)

    def _label(self, game: Game, action: int) -> str:
        return self.plugin.action_label(game, action) if self.plugin.action_label else ""

    def _state(self, game_id: str, record: dict) -> dict:
        game: Game = record["game"]
        legal = game.legal_actions()
        your_turn = not game.terminal() and game.to_play() == record["seat"]
        return {"id": game_id, "seat": record["seat"], "render": game.render(),
                "terminal": bool(game.terminal()),
                "to_play": None if game.terminal() else int(game.to_play()),
                "your_turn": your_turn,
                "actions": [{"action": a, "label": self._label(game, a),
                             "legal": bool(legal[a]) and your_turn}
                            for a in range(game.num_actions)],
                "columns": self.plugin.action_columns or game.num_actions,
                "totals": [round(float(total), 3) for total in record["totals"]],
                "agent_moves": record["agent_moves"], "hint": record["hint"],
                "version": self._version}
