"""What each command line does, as library calls; `__main__` only parses and dispatches here."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from muzero.checkpoint import LATEST, CheckpointError, load_checkpoint
from muzero.config import Config, config_overrides
from muzero.play import play_in_terminal
from muzero.plugins import load_game

NOT_AVAILABLE_EXIT_CODE = 3
INTERRUPTED_EXIT_CODE = 130


class NotAvailableError(RuntimeError):
    """A command whose machinery is not built yet; the CLI reports it and exits non-zero."""


def build_config(arguments: argparse.Namespace) -> Config:
    """The game's defaults with the command line's overrides applied (and validated)."""
    plugin = load_game(arguments.game)
    return plugin.make_config().replace(**config_overrides(arguments))


def not_available(what: str, needs: str) -> NotAvailableError:
    return NotAvailableError(f"{what} is not available yet: it needs {needs}, which is not "
                             f"built in this version")


def latest_run(checkpoint_dir: Path, game: str) -> Path:
    """The run folder of `game` whose latest checkpoint is the newest."""
    runs = [path.parent for path in (checkpoint_dir / game).glob(f"*/{LATEST}")]
    if not runs:
        raise CheckpointError(f"no run of {game!r} to resume under {checkpoint_dir / game}")
    return max(runs, key=lambda run: (run / LATEST).stat().st_mtime)


def _checked_game(arguments: argparse.Namespace, config: Config) -> None:
    if arguments.game is not None and arguments.game != config.game:
        raise CheckpointError(f"the checkpoint is of game {config.game!r}, not "
                              f"{arguments.game!r}")


def synchronous(arguments: argparse.Namespace) -> int:
    from muzero.runtime import configure_tensorflow
    from muzero.synchronous import SynchronousRun

    checkpoint = None
    if arguments.resume is not None:
        if arguments.resume == LATEST:
            if arguments.game is None:
                raise CheckpointError("--resume without a folder needs --game to find the run")
            checkpoint = load_checkpoint(latest_run(Path(arguments.checkpoint_dir),
                                                    arguments.game))
        else:
            checkpoint = load_checkpoint(arguments.resume)
        _checked_game(arguments, checkpoint.config)
        config = checkpoint.config.replace(**config_overrides(arguments))
        run_dir = checkpoint.path.parent
    else:
        if arguments.game is None:
            raise CheckpointError("give --game NAME (or --resume DIR)")
        config = build_config(arguments)
        name = arguments.run or f"seed{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = Path(arguments.checkpoint_dir) / config.game / name
    configure_tensorflow(config)
    plugin = load_game(config.game)
    print(f"run folder: {run_dir}" + (f" (resuming at step {checkpoint.step})"
                                      if checkpoint else ""), file=sys.stderr)
    run = SynchronousRun(plugin, config, run_dir, checkpoint)
    try:
        evaluation = run.run()
    except KeyboardInterrupt:
        print(f"resume with: python -m muzero --synchronous --resume {run_dir}", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    print(f"finished: {run.learner.step} training steps, {run.games_played} games, "
          f"checkpoint {run_dir}")
    if evaluation:
        print(f"final evaluation: {evaluation['summary']}")
    print(f"evaluate again: python -m muzero evaluate --checkpoint {run_dir}")
    print(f"curves: tensorboard --logdir {run_dir.parent}")
    return 0


def server(arguments: argparse.Namespace) -> int:
    raise not_available("the server command", "the HTTP server and its game/weight storage")


def selfplay(arguments: argparse.Namespace) -> int:
    build_config(arguments)
    raise not_available("the selfplay client", "the HTTP server and its client")


def train(arguments: argparse.Namespace) -> int:
    build_config(arguments)
    raise not_available("the train client", "the learner and the HTTP server")


def evaluate(arguments: argparse.Namespace) -> int:
    from muzero.agent import load_agent
    from muzero.evaluation import evaluate as evaluate_agent

    found = load_checkpoint(arguments.checkpoint)
    _checked_game(arguments, found.config)
    agent = load_agent(found)
    config = agent.config
    games = arguments.games if arguments.games is not None else config.num_eval_games
    if games < 1:
        raise ValueError(f"--games must be >= 1, got {games}")
    opponents = None if arguments.opponent is None else [arguments.opponent]
    print(f"{found.path} (step {found.step}), {games} games per opponent")
    result = evaluate_agent(agent, agent.plugin, config, games, seed=arguments.seed,
                            opponents=opponents, baselines=True)
    for line in result["summary"].split(" | "):
        print(line)
    return 0


def play(arguments: argparse.Namespace) -> int:
    if arguments.checkpoint is not None:
        from muzero.agent import load_agent

        agent = load_agent(arguments.checkpoint)
        _checked_game(arguments, agent.config)
        plugin, config, bot, name = agent.plugin, agent.config, agent, "agent"
    else:
        if arguments.game is None:
            raise ValueError("give --game NAME (or --checkpoint DIR to play a trained agent)")
        config = build_config(arguments)
        plugin = load_game(arguments.game)
        bot, name = None, arguments.opponent
    try:
        play_in_terminal(plugin, config, name, arguments.seat, bot=bot)
    except EOFError:
        print("\ninput closed; game abandoned", file=sys.stderr)
        return 1
    return 0
