"""Command line: `python -m muzero --game G --synchronous`, and the subcommands of async mode."""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: no start-up noise

from muzero import commands
from muzero.checkpoint import CheckpointError
from muzero.config import ConfigError, add_config_arguments
from muzero.game import GameError
from muzero.network import WeightsMismatchError
from muzero.plugins import UnknownGameError, available_games


def _game_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--game", required=required,
                        help=f"built-in game ({', '.join(available_games())}) or the dotted "
                             "module path of your own game")
    add_config_arguments(parser, exclude=("game",))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m muzero", allow_abbrev=False,
        description="MuZero: train with --synchronous in one process, or run server, selfplay and "
                    "train processes that talk over HTTP.")
    parser.add_argument("--synchronous", action="store_true",
                        help="alternate self-play and training in this process, then evaluate")
    parser.add_argument("--checkpoint-dir", default="checkpoints",
                        help="root of run folders: CHECKPOINT_DIR/GAME/RUN (default checkpoints)")
    parser.add_argument("--run", default=None,
                        help="run folder name (default seed<SEED>-<date>-<time>)")
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="DIR",
                        help="continue a run exactly from a checkpoint or run folder (no DIR: "
                             "the latest run of --game); flags given override its config")
    _game_arguments(parser, required=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    server = subparsers.add_parser("server", allow_abbrev=False,
                                   help="store games and weights, serve them over HTTP")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on")
    server.add_argument("--port", type=int, default=8000, help="port to listen on")
    server.add_argument("--data-dir", default="muzero-data",
                        help="folder for the game database and weight files")

    clients = [("selfplay", "play games with the server's latest weights, upload them"),
               ("train", "train on the server's games, upload new weights")]
    for name, help_text in clients:
        client = subparsers.add_parser(name, help=help_text, allow_abbrev=False)
        client.add_argument("--server", default="http://127.0.0.1:8000", help="server URL")
        _game_arguments(client, required=True)

    evaluate = subparsers.add_parser("evaluate", allow_abbrev=False,
                                     help="play a checkpoint against opponents")
    evaluate.add_argument("--checkpoint", required=True,
                          help="checkpoint folder, or a run folder (its latest checkpoint)")
    evaluate.add_argument("--opponent", default=None,
                          help="one of the game's opponents, or self (default: every opponent)")
    evaluate.add_argument("--games", type=int, default=None,
                          help="games per opponent (default: the run's num_eval_games)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the evaluation games")
    evaluate.add_argument("--game", default=None, help="check that the checkpoint is of this game")

    play = subparsers.add_parser("play", allow_abbrev=False, help="play a game in the terminal")
    play.add_argument("--opponent", default="random", help="one of the game's opponents")
    play.add_argument("--seat", type=int, default=0, help="your player number (0 moves first)")
    play.add_argument("--checkpoint", default=None,
                      help="play the trained agent of a checkpoint or run folder instead")
    _game_arguments(play, required=False)
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
        if not arguments.synchronous or (arguments.game is None and arguments.resume is None):
            parser.error("give --game NAME --synchronous, or a command (see --help)")
        command = commands.synchronous
    else:
        command = COMMANDS[arguments.command]
    try:
        return command(arguments)
    except commands.NotAvailableError as error:
        print(f"muzero: {error}", file=sys.stderr)
        return commands.NOT_AVAILABLE_EXIT_CODE
    except (UnknownGameError, ConfigError, GameError, CheckpointError, WeightsMismatchError,
            ValueError) as error:
        print(f"muzero: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
