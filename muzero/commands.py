"""What each command line does, as library calls; `__main__` only parses and dispatches here."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from muzero.checkpoint import (
    AGENT,
    LATEST,
    CheckpointError,
    checkpoints_before,
    load_checkpoint,
)
from muzero.config import RUNTIME_FIELDS, Config
from muzero.config_flags import config_overrides
from muzero.contract import check_game_contract
from muzero.play import play_in_terminal
from muzero.plugins import GamePlugin, folder_name, load_game
from muzero.selection import LAST, AgentSelection

INTERRUPTED_EXIT_CODE = 130


def build_config(arguments: argparse.Namespace) -> Config:
    """The game's defaults with the command line's overrides applied (and validated)."""
    plugin = load_game(arguments.game)
    overrides = config_overrides(arguments)
    config, derivation = plugin.default_config(overrides.get("game_options"))
    if derivation:
        print(f"defaults derived from {arguments.game} (each can be set by its flag):",
              file=sys.stderr)
        for line in derivation:
            print(f"  {line}", file=sys.stderr)
    return config.replace(**overrides)


def latest_run(checkpoint_dir: Path, game: str) -> Path:
    """The run folder of `game` whose latest checkpoint is the newest."""
    folder = checkpoint_dir / folder_name(game)
    runs = [path.parent for path in folder.glob(f"*/{LATEST}")]
    if not runs:
        raise CheckpointError(f"no run of {game!r} to resume under {folder}")
    return max(runs, key=lambda run: (run / LATEST).stat().st_mtime)


def _checked_game(arguments: argparse.Namespace, config: Config) -> None:
    if arguments.game is not None and arguments.game != config.game:
        raise CheckpointError(f"the checkpoint is of game {config.game!r}, not "
                              f"{arguments.game!r}")


def _checked_game_plugin(config: Config) -> GamePlugin:
    """The run's game, its methods checked on one random episode before anything else runs."""
    plugin = load_game(config.game)
    check_game_contract(plugin, config)
    return plugin


def _naming_other_checkpoints(error: Exception, path: Path) -> CheckpointError:
    """A damaged checkpoint need not end a long run: the error names the run's earlier
    checkpoints and the `--resume` that continues from the newest of them. `path` is the
    checkpoint that failed, or the run folder whose `latest` names it."""
    earlier = checkpoints_before(path)
    if not earlier:
        return CheckpointError(str(error))
    return CheckpointError(f"{error}; if that checkpoint is damaged, this run's earlier ones "
                           f"are {', '.join(folder.name for folder in earlier)} (continue from "
                           f"the newest with --resume {earlier[-1]})")


def _check_new_run_folder(run_dir: Path) -> None:
    """A new run writes its checkpoints, `latest`, `agent` and curves into its folder, so one
    that already holds files would mix two runs and overwrite the older one's checkpoints."""
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is a file, not a run folder: give another --run")
    if not any(run_dir.iterdir()):
        return
    try:
        held = load_checkpoint(run_dir)
    except CheckpointError:
        raise CheckpointError(f"run folder {run_dir} already holds files but no checkpoint: "
                              f"give another --run (or delete the folder)") from None
    raise CheckpointError(f"run folder {run_dir} already holds a run of game "
                          f"{held.config.game!r} at step {held.step}: continue it with --resume "
                          f"{run_dir}, or give another --run")


def synchronous(arguments: argparse.Namespace) -> int:
    from muzero.network import WeightsMismatchError
    from muzero.runtime import configure_tensorflow
    from muzero.synchronous import SynchronousRun

    checkpoint = None
    if arguments.resume is not None:
        if arguments.resume == LATEST:
            if arguments.game is None:
                raise CheckpointError("--resume without a folder needs --game to find the run")
            resume_from = latest_run(Path(arguments.checkpoint_dir), arguments.game)
        else:
            resume_from = Path(arguments.resume)
        try:
            checkpoint = load_checkpoint(resume_from)
        except CheckpointError as error:
            raise _naming_other_checkpoints(error, resume_from) from None
        _checked_game(arguments, checkpoint.config)
        config = checkpoint.config.replace(**config_overrides(arguments))
        run_dir = checkpoint.path.parent
    else:
        if arguments.game is None:
            raise CheckpointError("give --game NAME (or --resume DIR)")
        config = build_config(arguments)
        name = arguments.run or f"seed{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = Path(arguments.checkpoint_dir) / folder_name(config.game) / name
        _check_new_run_folder(run_dir)
    configure_tensorflow(config)
    plugin = _checked_game_plugin(config)
    try:
        run = SynchronousRun(plugin, config, run_dir, checkpoint)
    except (CheckpointError, WeightsMismatchError) as error:
        if checkpoint is None:
            raise
        raise _naming_other_checkpoints(error, checkpoint.path) from None
    print(f"run folder: {run_dir}" + (f" (resuming at step {checkpoint.step})"
                                      if checkpoint else ""), file=sys.stderr)
    resume = f"resume with: python -m muzero --synchronous --resume {run_dir}"
    try:
        evaluation = run.run()
    except KeyboardInterrupt:
        print(f"quit without a new checkpoint; {resume}", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    if run.interrupted:
        print(resume, file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    print(f"finished: {run.learner.step} training steps, {run.games_played} games, "
          f"checkpoint {run_dir}")
    if evaluation:
        print(f"final evaluation: {evaluation['summary']}")
    print(agent_line(run_dir, run.selection))
    print(f"evaluate again: python -m muzero evaluate --checkpoint {run_dir}")
    print(f"curves: tensorboard --logdir {run_dir.parent}")
    return 0


def agent_line(run_dir: Path, selection: AgentSelection) -> str:
    """Which checkpoint plays for the run, and why (muzero/selection.py)."""
    agent = load_checkpoint(run_dir, AGENT)
    if selection.rule == LAST or not selection.candidates:
        return f"agent: {agent.path.name} (the last checkpoint)"
    return (f"agent: {agent.path.name}, the best of {selection.candidates} evaluated checkpoints "
            f"(chosen on: {agent.meta['evaluation']['summary']}; evaluate it with another "
            f"--seed for an unbiased figure)")


def _config_flags(arguments: argparse.Namespace) -> dict:
    """The config flags given, without --game (which names the run, not a setting)."""
    return {name: value for name, value in config_overrides(arguments).items()
            if name != "game"}


def _token(arguments: argparse.Namespace) -> str | None:
    return arguments.token or os.environ.get("MUZERO_TOKEN") or None


def server(arguments: argparse.Namespace) -> int:
    from muzero.runtime import configure_tensorflow
    from muzero.server.app import check_can_listen, serve
    from muzero.server.guards import is_loopback
    from muzero.server.storage import Store, stored_config

    token = _token(arguments)
    if token is None and not is_loopback(arguments.host) and not arguments.allow_no_token:
        raise ValueError(f"refusing to listen on {arguments.host} without a token: anyone who "
                         f"can reach it could upload games and weights. Give --token (or "
                         f"MUZERO_TOKEN), or --allow-no-token if the network is yours alone")
    check_can_listen(arguments.host, arguments.port)
    data_dir = Path(arguments.data_dir)
    config = stored_config(data_dir)
    if config is None:
        if arguments.game is None:
            raise ValueError(f"{data_dir} holds no run yet: give --game NAME to start one")
        config = build_config(arguments)
    else:
        if arguments.game is not None and arguments.game != config.game:
            raise ValueError(f"{data_dir} holds a run of game {config.game!r}, not "
                             f"{arguments.game!r}")
        flags = _config_flags(arguments)
        ignored = sorted(set(flags) - RUNTIME_FIELDS)
        if ignored:
            print(f"note: {data_dir} keeps the hyper-parameters it was started with; ignored: "
                  f"{', '.join(ignored)}", file=sys.stderr)
        config = config.replace(**{name: value for name, value in flags.items()
                                   if name in RUNTIME_FIELDS})
    configure_tensorflow(config)
    store = Store(data_dir, _checked_game_plugin(config), config,
                  keep_versions=arguments.keep_versions, keep_games=arguments.keep_games)
    stats = store.stats()
    print(f"muzero server: {config.game}, {stats['games']} games, weights v{stats['version']} "
          f"(step {stats['step']}) in {data_dir}; listening on http://{arguments.host}:"
          f"{arguments.port}" + (" (token required)" if token else ""), file=sys.stderr,
          flush=True)
    serve(store, arguments.host, arguments.port, token,
          allowed_hosts=tuple(arguments.allow_host))
    return 0


def _running_config(client, arguments: argparse.Namespace) -> Config:
    """The config of the server's run, checked against the command's --game."""
    config = client.config()
    if arguments.game is not None and arguments.game != config.game:
        raise ValueError(f"the server runs {config.game!r}, not {arguments.game!r}")
    return config


def _connect(arguments: argparse.Namespace):
    """The HTTP client and the run's config (the server's, with this command's overrides)."""
    from muzero.runtime import configure_tensorflow
    from muzero.server.client import HttpClient

    client = HttpClient(arguments.server, _token(arguments), log=lambda line: print(
        line, file=sys.stderr))
    config = _running_config(client, arguments).replace(**_config_flags(arguments))
    configure_tensorflow(config)
    return client, config


def selfplay(arguments: argparse.Namespace) -> int:
    from muzero.server.workers import run_selfplay

    client, config = _connect(arguments)
    if arguments.games_per_upload < 1:
        raise ValueError(f"--games-per-upload must be >= 1, got {arguments.games_per_upload}")
    played = run_selfplay(client, _checked_game_plugin(config), config, arguments.games_per_upload,
                          max_games=arguments.games, seed=arguments.client_seed)
    print(f"self-play done: {played} games uploaded")
    return 0


def train(arguments: argparse.Namespace) -> int:
    from muzero.server.workers import Trainer

    client, config = _connect(arguments)
    if arguments.publish_interval < 1:
        raise ValueError(f"--publish-interval must be >= 1, got {arguments.publish_interval}")
    log_dir = (Path(arguments.logdir) / folder_name(config.game)
               / f"train-{time.strftime('%Y%m%d-%H%M%S')}")
    trainer = Trainer(client, _checked_game_plugin(config), config, arguments.publish_interval,
                      log_dir)
    print(f"curves: tensorboard --logdir {log_dir.parent}", file=sys.stderr)
    evaluation = trainer.run()
    print(f"training done: step {trainer.learner.step}")
    if evaluation:
        print(f"final evaluation: {evaluation['summary']}")
    version, step, _ = client.agent_weights()
    print(f"agent: weights v{version} (step {step}), the best evaluated: "
          f"{client.url}/api/v1/weights/agent")
    return 0


def upload(arguments: argparse.Namespace) -> int:
    from muzero.server.client import HttpClient
    from muzero.server.workers import upload_checkpoint

    found = load_checkpoint(arguments.checkpoint)
    client = HttpClient(arguments.server, _token(arguments), patience=60.0)
    running = client.config().game
    if running != found.config.game:
        raise ValueError(f"the checkpoint is of game {found.config.game!r}, the server runs "
                         f"{running!r}")
    upload_checkpoint(client, found)
    return 0


def _server_agent(arguments: argparse.Namespace):
    """The agent an asynchronous run's server serves (its best evaluated weights), and where
    it came from."""
    from muzero.agent import agent_with_weights
    from muzero.server.client import HttpClient

    client = HttpClient(arguments.server, _token(arguments), patience=60.0)
    config = _running_config(client, arguments)
    version, step, weights = client.agent_weights()
    with tempfile.TemporaryDirectory(prefix="muzero-agent-") as folder:
        path = Path(folder) / "agent.weights.h5"
        path.write_bytes(weights)
        agent = agent_with_weights(config, path)
    return agent, f"{client.url}: the run's agent, weights v{version} (step {step})"


def evaluate(arguments: argparse.Namespace) -> int:
    from muzero.agent import load_agent
    from muzero.evaluation import evaluate as evaluate_agent

    if arguments.server is not None:
        agent, source = _server_agent(arguments)
    else:
        found = load_checkpoint(arguments.checkpoint, AGENT)
        _checked_game(arguments, found.config)
        agent, source = load_agent(found), f"{found.path} (step {found.step})"
    config = agent.config
    games = arguments.games if arguments.games is not None else config.num_eval_games
    if games < 1:
        raise ValueError(f"--games must be >= 1, got {games}")
    opponents = None if arguments.opponent is None else [arguments.opponent]
    print(f"{source}, {games} games per opponent")
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
