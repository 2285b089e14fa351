"""Command line: `python -m muzero --game G --synchronous`, and the subcommands of async mode."""

from __future__ import annotations

import argparse
import sys

from muzero import commands
from muzero.checkpoint import CheckpointError
from muzero.config import ConfigError
from muzero.config_flags import add_config_arguments
from muzero.game import GameError
from muzero.plugins import UnknownGameError, available_games
from muzero.server.errors import ServerError, ServerUnavailable
from muzero.server.folder import (
    DEFAULT_KEEP_GAMES,
    DEFAULT_KEEP_VERSIONS,
    KEEP_GAMES,
    FolderLocked,
)
from muzero.tensorflow_import import import_tensorflow

DEFAULT_PORT = 5000


def _game_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--game", required=required,
                        help=f"built-in game ({', '.join(available_games())}), the dotted "
                             "module path of your own game, gym:ENV_ID (Gymnasium) or "
                             "spiel:NAME (OpenSpiel)")
    add_config_arguments(parser, exclude=("game",))


def _token_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", default=None,
                        help="shared secret of the server (default: $MUZERO_TOKEN; none: no "
                             "check)")


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
    seed_spellings = parser.add_argument_group(
        "short forms", "--server DATA_DIR is `server --data-dir DATA_DIR`; --client HOST "
        "--self-play N is `selfplay --server HOST --envs N`; --client HOST --train N is "
        "`train --server HOST --num-eval-games N`")
    seed_spellings.add_argument("--server", dest="server_dir", metavar="DATA_DIR")
    seed_spellings.add_argument("--client", metavar="HOST")
    seed_spellings.add_argument("--self-play", type=int, metavar="N")
    seed_spellings.add_argument("--train", type=int, metavar="N_EVAL_GAMES")
    _game_arguments(parser, required=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    server = subparsers.add_parser("server", allow_abbrev=False,
                                   help="store games and weights, serve them over HTTP")
    server.add_argument("--data-dir", default="muzero-data",
                        help="folder of the run's database and weight files (a folder that "
                             "holds a run continues it)")
    server.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default loopback; 0.0.0.0 for every "
                             "interface)")
    server.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    server.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a name clients may reach the server by, besides its --host and "
                             "the loopback names (repeatable; '*': any, for a server behind a "
                             "proxy that checks names itself)")
    server.add_argument("--allow-no-token", action="store_true",
                        help="listen on a non-loopback --host without a token (anyone who can "
                             "reach the port can then change the run)")
    server.add_argument("--keep-versions", type=int, default=DEFAULT_KEEP_VERSIONS,
                        metavar="N",
                        help="weights versions kept on disk: the newest N (default "
                             f"{DEFAULT_KEEP_VERSIONS}), the run's agent and the checkpoints "
                             "awaiting evaluation; others are deleted as new ones arrive")
    server.add_argument("--keep-games", choices=KEEP_GAMES, default=DEFAULT_KEEP_GAMES,
                        help="games kept on disk: only those still in the replay window "
                             "(window, the default: a restart needs no others), or every "
                             "upload's (all: the run's record, about 4 GB a day of "
                             "tic-tac-toe on 2 cores)")
    _token_argument(server)
    _game_arguments(server, required=False)

    clients = [("selfplay", "play games with the server's latest weights, upload them"),
               ("train", "train on the server's games, upload new weights")]
    for name, help_text in clients:
        client = subparsers.add_parser(name, help=help_text, allow_abbrev=False)
        client.add_argument("--server", default=f"http://127.0.0.1:{DEFAULT_PORT}",
                            help="server URL (or HOST[:PORT])")
        _token_argument(client)
        _game_arguments(client, required=False)
    selfplay, train = (subparsers.choices[name] for name, _ in clients)
    selfplay.add_argument("--games-per-upload", type=int, default=64,
                          help="games played between two uploads (default 64)")
    selfplay.add_argument("--games", type=int, default=None,
                          help="stop after this many games (default: when the server holds "
                               "the run's num_games)")
    selfplay.add_argument("--client-seed", type=int, default=None,
                          help="seed of this client's games (default: random)")
    train.add_argument("--publish-interval", type=int, default=100,
                       help="training steps between two weight uploads (default 100)")
    train.add_argument("--logdir", default="checkpoints",
                       help="TensorBoard curves go to LOGDIR/GAME/train-TIME (default "
                            "checkpoints, beside synchronous runs)")

    upload = subparsers.add_parser("upload", allow_abbrev=False,
                                   help="send a checkpoint's games and weights to a server, to "
                                        "continue a synchronous run in async mode")
    upload.add_argument("--server", default=f"http://127.0.0.1:{DEFAULT_PORT}",
                        help="server URL (or HOST[:PORT])")
    upload.add_argument("--checkpoint", required=True,
                        help="checkpoint folder, or a run folder (its latest checkpoint)")
    _token_argument(upload)

    evaluate = subparsers.add_parser("evaluate", allow_abbrev=False,
                                     help="play a checkpoint, or a server's agent, against "
                                          "opponents")
    evaluated = evaluate.add_mutually_exclusive_group(required=True)
    evaluated.add_argument("--checkpoint",
                           help="checkpoint folder, or a run folder (its agent: the best "
                                "evaluated checkpoint)")
    evaluated.add_argument("--server",
                           help="URL of an asynchronous run's server: its agent (the best "
                                "evaluated weights)")
    _token_argument(evaluate)
    evaluate.add_argument("--opponent", default=None,
                          help="one of the game's opponents, or self (default: every opponent)")
    evaluate.add_argument("--games", type=int, default=None,
                          help="games per opponent (default: the run's num_eval_games)")
    evaluate.add_argument("--seed", type=int, default=0,
                          help="seed of the evaluation games (a run's checkpoints met those of "
                               "its own --seed; another seed gives a figure free of the agent "
                               "selection's bias)")
    evaluate.add_argument("--game", default=None,
                          help="check that the checkpoint or the server's run is of this game")

    play = subparsers.add_parser("play", allow_abbrev=False, help="play a game in the terminal")
    play.add_argument("--opponent", default="random", help="one of the game's opponents")
    play.add_argument("--seat", type=int, default=0, help="your player number (0 moves first)")
    play.add_argument("--checkpoint", default=None,
                      help="play the trained agent of a checkpoint or run folder instead")
    _game_arguments(play, required=False)
    return parser


def _short_form(parser: argparse.ArgumentParser, arguments: argparse.Namespace,
                argv: list[str] | None) -> argparse.Namespace:
    """Synchronous mode, or a command spelled the seed's way, as a parsed command."""
    if arguments.server_dir is not None:
        extra = ["server", "--data-dir", arguments.server_dir]
    elif arguments.client is not None and (arguments.self_play is None) != (arguments.train
                                                                             is None):
        extra = (["selfplay", "--server", arguments.client, "--envs", str(arguments.self_play)]
                 if arguments.self_play is not None else
                 ["train", "--server", arguments.client, "--num-eval-games",
                  str(arguments.train)])
    elif arguments.client is not None:
        parser.error("--client HOST needs --self-play N or --train N_EVAL_GAMES")
    else:
        if not arguments.synchronous or (arguments.game is None and arguments.resume is None):
            parser.error("give --game NAME --synchronous, or a command (see --help)")
        arguments.command = "synchronous"
        return arguments
    given = sys.argv[1:] if argv is None else argv
    short_flags = {"--server", "--client", "--self-play", "--train"}
    rest, skip = [], False
    for item in given:  # the config flags given with the short form go to the command
        if skip:
            skip = False
            continue
        if item.split("=", 1)[0] in short_flags:
            skip = "=" not in item
            continue
        rest.append(item)
    return parser.parse_args(extra + rest)


COMMANDS = {
    "synchronous": commands.synchronous,
    "server": commands.server,
    "selfplay": commands.selfplay,
    "train": commands.train,
    "upload": commands.upload,
    "evaluate": commands.evaluate,
    "play": commands.play,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()  # --help and usage errors answer without loading TensorFlow
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        arguments = _short_form(parser, arguments, argv)
    import_tensorflow()  # every command uses it: loaded here, once, without its notices
    try:
        return COMMANDS[arguments.command](arguments)
    except (UnknownGameError, ConfigError, GameError, CheckpointError, FolderLocked,
            ServerError, ValueError) as error:  # ServerError: a refused request; ValueError:
        # bad options, damaged or mismatched weights files (WeightsMismatchError) among them
        print(f"muzero: error: {error}", file=sys.stderr)
        return 2
    except ServerUnavailable as error:  # past the client's patience (upload's 60 s)
        print(f"muzero: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a client or server stopped by Ctrl-C: what it stored stays
        print("muzero: interrupted", file=sys.stderr)
        return commands.INTERRUPTED_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
