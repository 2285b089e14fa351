"""Running the real server process on a free loopback port, and making valid game uploads."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests

from muzero.plugins import load_game
from muzero.records import GameRecord
from muzero.server import wire

TINY_FLAGS = ["--hidden-size", "16", "--num-simulations", "4", "--batch-size", "16",
              "--num-unroll-steps", "3", "--jit-compile", "false", "--replay-capacity", "3000",
              "--tf-threads", "1", "--envs", "16"]
TICTACTOE = load_game("tictactoe")
NPZ = {"Content-Type": "application/octet-stream"}  # what the API's .npz routes take


def error_text(response: requests.Response) -> str:
    """The server's error message: the JSON `error`, or the text of a plain answer (waitress
    refuses oversized bodies itself)."""
    try:
        return response.json()["error"]
    except ValueError:
        return response.text


# `python -m muzero` with SIGINT handled as in a terminal, even where the suite runs with SIGINT
# ignored (a CI script that starts it in the background): Python keeps an inherited SIG_IGN.
MUZERO_WITH_CTRL_C = [sys.executable, "-c", "import runpy, signal; "
                      "signal.signal(signal.SIGINT, signal.default_int_handler); "
                      "runpy.run_module('muzero', run_name='__main__', alter_sys=True)"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """`python -m muzero server` in a subprocess; its output goes to `log`."""

    def __init__(self, data_dir: Path, port: int | None = None, flags: tuple[str, ...] = (),
                 game: str = "tictactoe"):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.flags = ["--game", game, *TINY_FLAGS, *flags]
        self.log = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> ServerProcess:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "muzero", "server", "--data-dir", str(self.data_dir),
                 "--port", str(self.port), *self.flags], stdout=log, stderr=log,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n"
                                   f"{self.log.read_text()[-3000:]}")
            try:
                requests.get(f"{self.url}/api/v1/stats", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"server did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def stats(self, **kwargs) -> dict:
        return requests.get(f"{self.url}/api/v1/stats", timeout=10, **kwargs).json()


def random_games(count: int, seed: int = 0) -> list[GameRecord]:
    """Legal tic-tac-toe games by random play, with uniform policies and zero values."""
    rng = np.random.default_rng(seed)
    config = TICTACTOE.make_config()
    games = []
    for _ in range(count):
        game = TICTACTOE.make_game(config, rng)
        rows = []
        while not game.terminal():
            legal = game.legal_actions()
            action = int(rng.choice(np.flatnonzero(legal)))
            observation, player = game.observation(), game.to_play()
            rewards = game.step(action)
            rows.append((observation, action, rewards, player, legal / legal.sum(), legal))
        observations, actions, rewards, players, policies, legal = zip(*rows)
        games.append(GameRecord(np.stack(observations), np.array(actions, np.int32),
                                np.stack(rewards).astype(np.float32),
                                np.array(players, np.int32),
                                np.zeros((len(rows), 2), np.float32),
                                np.stack(policies).astype(np.float32), np.stack(legal)))
    return games


def stored(server: ServerProcess) -> dict:
    """Everything durable the server holds, summarised: rows of each table (with the priorities'
    sum) and the weight files."""
    db = sqlite3.connect(f"file:{server.data_dir / 'muzero.sqlite3'}?mode=ro", uri=True)
    try:
        summary = {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                   for table in ("uploads", "versions", "log", "priorities")}
        summary["priority_sum"] = db.execute("SELECT TOTAL(error) FROM priorities").fetchone()[0]
        summary["max_position"] = db.execute(
            "SELECT MAX(first_position + num_positions) FROM uploads").fetchone()[0]
    finally:
        db.close()
    summary["files"] = sorted(path.name for path in (server.data_dir / "weights").iterdir())
    stats = server.stats()
    summary.update({key: stats[key] for key in ("games", "positions", "version", "step")})
    return summary


def server_with_games(data_dir: Path, games: int):
    """A module fixture's body: a started server holding `games` random games, stopped at the
    end (also when the set-up fails half-way)."""
    process = ServerProcess(data_dir).start()
    try:
        requests.post(f"{process.url}/api/v1/games", data=wire.encode_games(random_games(games)),
                      headers=NPZ).raise_for_status()
        yield process
    finally:
        process.stop()

