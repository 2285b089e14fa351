"""What each command line does, as library calls; `__main__` only parses and dispatches here."""

from __future__ import annotations

import argparse
import sys

from muzero.config import Config, config_overrides
from muzero.play import play_in_terminal
from muzero.plugins import load_game

NOT_AVAILABLE_EXIT_CODE = 3


class NotAvailableError(RuntimeError):
    """A command whose machinery is not built yet; the CLI reports it and exits non-zero."""


def build_config(arguments: argparse.Namespace) -> Config:
    """The game's defaults with the command line's overrides applied (and validated)."""
    plugin = load_game(arguments.game)
    return plugin.make_config().replace(**config_overrides(arguments))


def not_available(what: str, needs: str) -> NotAvailableError:
    return NotAvailableError(f"{what} is not available yet: it needs {needs}, which is not "
                             f"built in this version")


def synchronous(arguments: argparse.Namespace) -> int:
    build_config(arguments)
    raise not_available("--synchronous training", "the learner (replay buffer, losses, "
                        "training loop)")


def server(arguments: argparse.Namespace) -> int:
    raise not_available("the server command", "the HTTP server and its game/weight storage")


def selfplay(arguments: argparse.Namespace) -> int:
    build_config(arguments)
    raise not_available("the selfplay client", "the HTTP server and its client")


def train(arguments: argparse.Namespace) -> int:
    build_config(arguments)
    raise not_available("the train client", "the learner and the HTTP server")


def evaluate(arguments: argparse.Namespace) -> int:
    build_config(arguments)
    raise not_available("evaluate", "checkpoints and the evaluation module")


def play(arguments: argparse.Namespace) -> int:
    config = build_config(arguments)
    plugin = load_game(arguments.game)
    if arguments.checkpoint is not None:
        raise not_available("playing against a trained agent", "checkpoint loading")
    try:
        play_in_terminal(plugin, config, arguments.opponent, arguments.seat)
    except EOFError:
        print("\ninput closed; game abandoned", file=sys.stderr)
        return 1
    return 0
