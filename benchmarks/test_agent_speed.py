"""The agent's decisions per second for tic-tac-toe with the default network: one search of each
position against one search of each of its 8 symmetric views (`agent_symmetries`, the default).

The agent decides in evaluation (100 games a matchup, so up to 100 positions a batch), in
`play` and through `load_agent` (one position). Eight views are eight times the trees, in one
batch, so the cost grows less than eightfold where network calls are mostly fixed cost.
"""

from __future__ import annotations

import numpy as np
import pytest

from muzero.agent import Agent
from muzero.batching.inference import inference_for_game
from muzero.plugins import load_game

PLUGIN = load_game("tictactoe")
CONFIG = PLUGIN.make_config()


@pytest.fixture(scope="module")
def inference():
    model = inference_for_game(PLUGIN, CONFIG)
    model.warm_up()
    return model


def positions(count: int) -> list:
    """Positions after two to four random moves (no game ends before five), seeded."""
    rng = np.random.default_rng(0)
    found = []
    for _ in range(count):
        game = PLUGIN.make_game(CONFIG, rng)
        for _ in range(int(rng.integers(2, 5))):
            game.step(int(rng.choice(np.flatnonzero(game.legal_actions()))))
        found.append(game)
    return found


@pytest.mark.parametrize("views", ["one view", "8 views"])
@pytest.mark.parametrize("batch", [1, 100])
def test_agent_decisions_per_second(benchmark, record, inference, views, batch):
    config = CONFIG.replace(agent_symmetries=views == "8 views")
    agent = Agent(PLUGIN, config, inference)
    games = positions(batch)
    agent.search_games(games)  # warm-up: kernels loaded, trees allocated
    benchmark.pedantic(agent.search_games, args=(games,), rounds=5, iterations=1)
    record(f"agent {views} B={batch} decisions/s", batch / benchmark.stats.stats.mean, benchmark)
