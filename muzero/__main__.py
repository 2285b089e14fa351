"""Command line: `python -m muzero --game G --synchronous`, and the subcommands of async mode."""

from __future__ import annotations

import argparse
import sys

from muzero import commands
from muzero.config import ConfigError, add_config_arguments
from muzero.game import GameError
from muzero.plugins import UnknownGameError, available_games


def _game_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--game", required=required,
                        help=f"built-in game ({', '.join(available_games())}) or the dotted "
                             "module path of your own game")
    add_config_arguments(parser, exclude=("game",))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m muzero",
        description="MuZero: train with --synchronous in one process, or run server, selfplay and "
                    "train processes that talk over HTTP.")
    parser.add_argument("--synchronous", action="store_true",
                        help="alternate self-play and training in this process, then evaluate")
    _game_arguments(parser, required=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    server = subparsers.add_parser("server", help="store games and weights, serve them over HTTP")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on")
    server.add_argument("--port", type=int, default=8000, help="port to listen on")
    server.add_argument("--data-dir", default="muzero-data",
                        help="folder for the game database and weight files")

    clients = [("selfplay", "play games with the server's latest weights, upload them"),
               ("train", "train on the server's games, upload new weights")]
    for name, help_text in clients:
        client = subparsers.add_parser(name, help=help_text)
        client.add_argument("--server", default="http://127.0.0.1:8000", help="server URL")
        _game_arguments(client, required=True)

    evaluate = subparsers.add_parser("evaluate", help="play a checkpoint against opponents")
    evaluate.add_argument("--checkpoint", required=True, help="weights file (*.weights.h5)")
    _game_arguments(evaluate, required=True)

    play = subparsers.add_parser("play", help="play a game in the terminal")
    play.add_argument("--opponent", default="random", help="one of the game's opponents")
    play.add_argument("--seat", type=int, default=0, help="your player number (0 moves first)")
    play.add_argument("--checkpoint", default=None, help="play a trained agent instead")
    _game_arguments(play, required=True)
    return parser


COMMANDS = {
    "server": commands.server,
    "selfplay": commands.selfplay,
    "train": commands.train,
    "evaluate": commands.evaluate,
    "play": commands.play,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        if not arguments.synchronous or arguments.game is None:
            parser.error("give --game NAME --synchronous, or a command (see --help)")
        command = commands.synchronous
    else:
        command = COMMANDS[arguments.command]
    try:
        return command(arguments)
    except commands.NotAvailableError as error:
        print(f"muzero: {error}", file=sys.stderr)
        return commands.NOT_AVAILABLE_EXIT_CODE
    except (UnknownGameError, ConfigError, GameError, ValueError) as error:
        print(f"muzero: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
