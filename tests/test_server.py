"""Async mode against the real server process on a loopback port: clients, durability, bad
input, the token, and the pages in a real headless browser."""

from __future__ import annotations

import dataclasses
import io
import math
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest
import requests
from event_files import tags_in
from server_helpers import (
    MUZERO_WITH_CTRL_C,
    NPZ,
    TICTACTOE,
    ServerProcess,
    error_text,
    free_port,
    random_games,
    stored,
)

from muzero.__main__ import main
from muzero.checkpoint import optimizer_variables
from muzero.network import network_for_game
from muzero.plugins import load_game
from muzero.selection import agent_score
from muzero.server import wire
from muzero.server.app import create_app
from muzero.server.client import HttpClient, ServerError, ServerUnavailable, normalise_url
from muzero.server.errors import NotFound
from muzero.server.ingest import IngestSeries
from muzero.server.storage import Store, stored_config
from muzero.training import Learner

RUN_FLAGS = ("--num-games", "64", "--num-steps", "30", "--checkpoint-interval", "15",
             "--num-eval-games", "2", "--games-per-iteration", "16", "--reanalyse-ratio", "0.5",
             "--agent-averaging", "4")  # the trainer's optimizer uploads carry the average


def client_command(server: ServerProcess, *arguments: str,
                   launcher: Sequence[str] = (sys.executable, "-m", "muzero")) -> list[str]:
    return [*launcher, *arguments, "--server", server.url,
            "--tf-threads", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A server after one self-play client and one training client ran a tiny run to its end:
    (server, self-play output, training output)."""
    folder = tmp_path_factory.mktemp("async")
    server = ServerProcess(folder / "data", flags=RUN_FLAGS).start()
    selfplay = subprocess.Popen(client_command(server, "selfplay", "--games-per-upload", "16",
                                               "--client-seed", "1"),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    train = subprocess.Popen(client_command(server, "train", "--publish-interval", "10",
                                            "--logdir", str(folder / "curves")),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        outputs = [process.communicate(timeout=300)[0] for process in (selfplay, train)]
        assert selfplay.returncode == 0, outputs[0][-3000:]
        assert train.returncode == 0, outputs[1][-3000:]
        yield server, outputs[0], outputs[1], folder / "curves"
    finally:
        for process in (selfplay, train):
            if process.poll() is None:
                process.kill()
        server.stop()


def test_selfplay_and_training_clients_advance_the_run(run):
    server, selfplay_output, train_output, _ = run
    stats = server.stats()
    assert stats["games"] >= 64 and stats["positions"] >= 64 * 5
    assert stats["step"] == 30
    assert stats["batches_served"] == 30
    assert "server holds" in selfplay_output and "self-play done" in selfplay_output
    assert "training done: step 30" in train_output
    assert "final evaluation: minimax" in train_output
    log = requests.get(f"{server.url}/api/v1/log").json()
    losses = [entry for entry in log["entries"] if entry["kind"] == "losses"]
    evaluations = [entry for entry in log["entries"] if entry["kind"] == "evaluation"]
    assert len(losses) >= 3  # rounds of at most 10 steps, cut at checkpoints and by the games
    assert stats["version"] == 1 + len(losses)  # initial weights, then one upload per round
    assert [entry["step"] for entry in evaluations] == [15, 30]
    assert sum(bin_["games"] for bin_ in log["ingest"]) == stats["games"]
    # the weights the trainer published last are what the server serves now
    latest = HttpClient(server.url).latest_weights(None)
    assert latest[:2] == (stats["version"], 30)
    assert HttpClient(server.url).latest_weights(stats["version"]) is None  # ETag
    # the agent: the best evaluated weights, as synchronous mode chooses (later on ties)
    scores = {entry["step"]: agent_score(entry["data"]) for entry in evaluations}
    best = max(scores, key=lambda step: (scores[step], step))
    version, step, _ = HttpClient(server.url).agent_weights()
    assert step == best
    assert f"agent: weights v{version} (step {best}), the best evaluated" in train_output


def test_evaluate_plays_the_agent_the_server_serves(run, capsys):
    """`evaluate --server URL`: the run's agent again, on games of another seed."""
    server = run[0]
    version, step, _ = HttpClient(server.url).agent_weights()
    assert main(["evaluate", "--server", server.url, "--games", "2", "--seed", "100"]) == 0
    printed = capsys.readouterr().out
    assert (f"{server.url}: the run's agent, weights v{version} (step {step}), 2 games per "
            f"opponent") in printed
    assert "\nminimax: seat 0 " in printed and "\nrandom: seat 0 " in printed
    assert main(["evaluate", "--server", server.url, "--game", "onearmbandit"]) == 2
    assert "the server runs 'tictactoe', not 'onearmbandit'" in capsys.readouterr().err


def test_the_trainer_reports_like_synchronous_mode(run):
    """The same checkpoint line in the terminal, and TensorBoard curves under --logdir."""
    _, _, train_output, curves = run
    lines = [line for line in train_output.splitlines() if line.startswith("step ")]
    assert [line.split(" | ")[0] for line in lines] == ["step 15/30", "step 30/30"]
    assert "loss value" in lines[-1] and "minimax: seat 0" in lines[-1]
    assert "steps/s" in lines[-1] and "training" in lines[-1] and "reanalysis" in lines[-1]
    tags = tags_in(curves)
    for tag in ("loss/value", "throughput/train_steps_per_second", "learning_rate", "config",
                "evaluation/minimax/seat_1_draws", "evaluation/summary"):
        assert tag in tags


def test_reanalysis_takes_whole_stored_games_and_refuses_targets_no_search_gives(run):
    server = run[0]
    client = HttpClient(server.url)
    stored = client.positions_to_reanalyse(3)
    assert len(stored.position_ids) >= 3 and stored.move_number[0] == 0
    assert stored.observations.shape[1:] == (3, 3, 3) and stored.legal.shape[1] == 9
    starts = np.flatnonzero(stored.move_number == 0)
    np.testing.assert_array_equal(np.diff(stored.position_ids), 1)  # consecutive whole games
    assert stored.legal[starts].all()  # the empty board: every move legal
    uniform = stored.legal / stored.legal.sum(axis=1, keepdims=True)
    values = np.zeros((len(uniform), 2))
    on_taken_cell = uniform.copy()
    row = int(np.argmin(stored.legal.all(axis=1)))  # a position with a taken cell
    on_taken_cell[row] = np.where(stored.legal[row], 0.0, 1.0) / (~stored.legal[row]).sum()
    for policies, status in [(on_taken_cell, 400), (uniform, 200)]:
        response = requests.post(f"{server.url}/api/v1/reanalysed", headers=NPZ,
                                 data=wire.encode_targets(stored.position_ids, policies, values))
        assert response.status_code == status, response.text
    assert "distribution over the position's legal moves" not in response.text
    assert response.json()["refreshed"] == len(stored.position_ids)


def test_the_agent_served_is_the_moving_average_the_trainer_evaluated(run, tmp_path):
    """The run averages the agent (--agent-averaging): `GET weights/agent` serves the chosen
    version's trainable weights replaced by the average its optimizer state carries, as a
    learner restored from that version computes it, not the trained weights."""
    server = run[0]
    served = requests.get(f"{server.url}/api/v1/weights/agent")
    version = int(served.headers["X-Weights-Version"])
    trained = requests.get(f"{server.url}/api/v1/weights/{version}").content
    optimizer = requests.get(f"{server.url}/api/v1/optimizer/{version}").content
    config = stored_config(server.data_dir)
    learner = Learner(network_for_game(TICTACTOE, config), config)
    (tmp_path / "trained.weights.h5").write_bytes(trained)
    learner.network.load_weights_file(tmp_path / "trained.weights.h5")
    with np.load(io.BytesIO(optimizer), allow_pickle=False) as archive:
        learner.set_optimizer_state(optimizer_variables(dict(archive)))
    (tmp_path / "agent.weights.h5").write_bytes(served.content)
    agent = network_for_game(TICTACTOE, config)
    agent.load_weights_file(tmp_path / "agent.weights.h5")
    for loaded, expected in zip(agent.get_weights(), learner.agent_weights()):
        np.testing.assert_array_equal(loaded, expected)
    assert served.content != trained


def test_weights_download_only_when_new(run):
    server = run[0]
    version = server.stats()["version"]
    response = requests.get(f"{server.url}/api/v1/weights/latest")
    assert response.status_code == 200 and response.headers["ETag"] == f'"v{version}"'
    again = requests.get(f"{server.url}/api/v1/weights/latest",
                         headers={"If-None-Match": f'"v{version}"'})
    assert again.status_code == 304 and again.content == b""
    older = requests.get(f"{server.url}/api/v1/weights/1")
    assert older.status_code == 200 and older.content != response.content


# ----- bad input: a 4xx naming the problem, nothing stored -----

def _games_bytes(games=None, **changes) -> bytes:
    """An upload of two legal games, with arrays replaced or dropped (None) by `changes`."""
    data = wire.read_npz(wire.encode_games(games or random_games(2, seed=7)), "games")
    for name, value in changes.items():
        if value is None:
            data.pop(name)
        else:
            data[name] = value(data[name]) if callable(value) else value
    return wire.to_npz(data)


def _illegal(actions):
    actions = actions.copy()
    actions[1] = actions[0]  # the second move on the first move's cell
    return actions


def _first_move_marked(legal_then: bool, row: int):
    """Legal moves with the first game's first move marked legal or not at `row`."""
    first_move = int(random_games(2, seed=7)[0].actions[0])

    def change(legal):
        legal = legal.copy()
        legal[row, first_move] = legal_then
        return legal
    return change


def _bandit_games() -> bytes:
    plugin = load_game("onearmbandit")
    rng = np.random.default_rng(0)
    game = plugin.make_game(plugin.make_config(), rng)
    rows = []
    while not game.terminal():
        rows.append((game.observation(), game.step(0)))
    observations, rewards = zip(*rows)
    length = len(rows)
    return wire.to_npz({"observations": np.stack(observations), "actions":
                        np.zeros(length, np.int32), "rewards": np.stack(rewards),
                        "to_play": np.zeros(length, np.int32),
                        "root_values": np.zeros((length, 1), np.float32),
                        "policies": np.full((length, 2), 0.5, np.float32),
                        "lengths": np.array([length], np.int32)})


def _other_network_weights(tmp_path) -> bytes:
    config = stored_config_for_tests().replace(hidden_size=32)
    path = tmp_path / "other.weights.h5"
    network_for_game(TICTACTOE, config).save_weights_file(path)
    return path.read_bytes()


def stored_config_for_tests():
    return TICTACTOE.make_config().replace(hidden_size=16)


def _post_games(data: bytes) -> dict:
    return {"method": "POST", "path": "games", "data": data, "headers": NPZ}


BAD_REQUESTS = {
    "not an archive": (_post_games(b"hello"), 400, "not an .npz archive"),
    "truncated archive": (_post_games(_games_bytes()[:900]), 400, "not a readable .npz"),
    # refused by waitress from its Content-Length, before the body is read: plain text
    "oversized body": (_post_games(b"PK" + bytes(65 * 1024 * 1024)), 413, "exceeds max_body"),
    "game of another game": (_post_games(_bandit_games()), 400, "observations has shape"),
    "wrong dtype": (_post_games(_games_bytes(observations=lambda o: o.astype(np.float64))),
                    400, "observations has dtype float64"),
    "missing array": (_post_games(_games_bytes(policies=None)), 400, "missing ['policies']"),
    "non-finite": (_post_games(_games_bytes(root_values=lambda v: v + np.nan)), 400,
                   "root_values holds non-finite"),
    "illegal action": (_post_games(_games_bytes(actions=_illegal, legal=np.ones_like)), 400,
                       "is not legal here"),  # legal moves faked to match: the rules decide
    "inconsistent lengths": (_post_games(_games_bytes(lengths=lambda n: n + 1)), 400,
                             "lengths sum to"),
    "wrong player to move": (_post_games(_games_bytes(to_play=lambda p: 1 - p)), 400,
                             "to_play is 1, but player 0 is to move"),
    "bad policy": (_post_games(_games_bytes(policies=lambda p: p * 2)), 400,
                   "sum to 1"),
    "a taken cell recorded as legal": (_post_games(_games_bytes(
        legal=_first_move_marked(True, row=1))), 400, "include moves the rules forbid"),
    "the move played recorded as illegal": (_post_games(_games_bytes(
        legal=_first_move_marked(False, row=0))), 400, "is not among its legal moves"),
    "unfinished game": (_post_games(_games_bytes(
        games=[dataclasses.replace(g, **{f: getattr(g, f)[:-1] for f in
                                         ("observations", "actions", "rewards", "to_play",
                                          "root_values", "policies", "legal")})
               for g in random_games(1, seed=3)])), 400, "not over after its"),
    "unknown weights version": ({"method": "GET", "path": "weights/999"}, 404,
                                "no weights version 999"),
    "weights that are not HDF5": ({"method": "POST", "path": "weights",
                                   "data": {"step": "5"},
                                   "files": {"weights": ("w.weights.h5", b"nonsense")}}, 400,
                                  "not a readable HDF5"),
    "weights without a step": ({"method": "POST", "path": "weights",
                                "files": {"weights": ("w.weights.h5", b"x")}}, 400,
                               "form field 'step'"),
    "batch size not a number": ({"method": "GET", "path": "batch?size=many"}, 400,
                                "'size' must be an integer"),
    "batch size zero": ({"method": "GET", "path": "batch?size=0"}, 400, "must be >= 1"),
    "priorities not an archive": ({"method": "POST", "path": "priorities", "data": b"x",
                                   "headers": NPZ}, 400,
                                  "not an .npz archive"),
    "priorities of unknown positions": (
        {"method": "POST", "path": "priorities",
         "data": wire.encode_priorities(np.array([10 ** 9]), np.array([0.5])),
         "headers": NPZ}, 400,
        "position ids must be in"),
    "priorities of unequal shapes": (
        {"method": "POST", "path": "priorities",
         "data": wire.encode_priorities(np.array([1, 2]), np.array([0.5])),
         "headers": NPZ}, 400,
        "must be equal 1-d shapes"),
    "log that is not JSON": ({"method": "POST", "path": "log", "data": b"{oops",
                              "headers": {"Content-Type": "application/json"}}, 400,
                             "must be a JSON object"),
    "log with a NaN": ({"method": "POST", "path": "log", "data": b'{"kind": "losses", '
                        b'"step": 3, "data": {"value": NaN}}',
                        "headers": {"Content-Type": "application/json"}}, 400, "non-finite"),
    "log without a step": ({"method": "POST", "path": "log",
                            "json": {"kind": "losses", "data": {}}}, 400,
                           "log step must be an integer"),
    "log of an unknown kind": ({"method": "POST", "path": "log",
                                "json": {"kind": "gossip", "step": 1, "data": {}}}, 400,
                               "log kind must be one of"),
    "reanalysis of no positions": ({"method": "GET", "path": "reanalyse?positions=0"}, 400,
                                   "must be >= 1"),
    "reanalysis of too many positions": ({"method": "GET", "path": "reanalyse?positions=5000"},
                                         400, "positions must be in [1, 4096]"),
    "reanalysed targets not an archive": ({"method": "POST", "path": "reanalysed",
                                           "data": b"x", "headers": NPZ}, 400,
                                          "not an .npz archive"),
    "reanalysed targets of unknown positions": (
        {"method": "POST", "path": "reanalysed", "headers": NPZ,
         "data": wire.encode_targets(np.array([10 ** 9]), np.full((1, 9), 1 / 9),
                                     np.zeros((1, 2)))}, 400, "position ids must be in"),
    "reanalysed targets of unequal shapes": (
        {"method": "POST", "path": "reanalysed", "headers": NPZ,
         "data": wire.encode_targets(np.array([1, 2]), np.full((1, 9), 1 / 9),
                                     np.zeros((1, 2)))}, 400, "expected position_ids [N]"),
    "unknown browser game": ({"method": "POST", "path": "play/nope", "json": {"action": 0}},
                             404, "no game 'nope'"),
    "unknown route": ({"method": "GET", "path": "nothing-here"}, 404, "not found"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_is_refused_and_nothing_is_stored(run, case, tmp_path):
    server = run[0]
    request, status, message = BAD_REQUESTS[case]
    request = dict(request)
    path = request.pop("path")
    before = server.stats()
    weight_files = sorted((server.data_dir / "weights").iterdir())
    response = requests.request(url=f"{server.url}/api/v1/{path}", timeout=60, **request)
    assert response.status_code == status
    assert message.lower() in error_text(response).lower()
    after = server.stats()
    for field in ("games", "positions", "version", "step", "buffer_positions"):
        assert after[field] == before[field], field
    assert sorted((server.data_dir / "weights").iterdir()) == weight_files


def test_weights_of_another_network_are_refused(run, tmp_path):
    server = run[0]
    response = requests.post(f"{server.url}/api/v1/weights", data={"step": "40"},
                             files={"weights": ("w.weights.h5",
                                                _other_network_weights(tmp_path))})
    assert response.status_code == 400
    assert "network shape differs" in response.json()["error"]
    assert "hidden_size" in response.json()["error"]


def test_a_repeated_upload_is_stored_once_and_the_server_keeps_serving(run):
    server = run[0]
    client = HttpClient(server.url)
    before = server.stats()["games"]
    data = wire.encode_games(random_games(3, seed=11))
    headers = {"X-Upload-Id": "same-upload", **NPZ}
    first = requests.post(f"{server.url}/api/v1/games", data=data, headers=headers).json()
    second = requests.post(f"{server.url}/api/v1/games", data=data, headers=headers).json()
    assert first == {**second, "total_games": first["total_games"]}
    assert server.stats()["games"] == before + 3
    batch = client.sample(8)
    assert batch.observations.shape == (8, 3, 3, 3) and batch.actions.shape == (8, 3)
    client.update_priorities(batch.indices, np.full(8, 0.25, np.float32))
    with pytest.raises(ServerError, match="400.*not an .npz archive"):
        client.request("POST", "games", data=b"junk", headers=NPZ)


# ----- durability -----

def test_sigkill_loses_no_acknowledged_game_and_restarts_with_the_same_state(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    client = HttpClient(server.url, patience=3.0, timeout=5.0)
    acknowledged: list[dict] = []
    stop = threading.Event()

    def upload_forever():
        seed = 0
        while not stop.is_set():
            try:
                acknowledged.append(client.add_games(random_games(8, seed=seed)))
            except (ServerUnavailable, ServerError):
                return
            seed += 1

    weights = requests.get(f"{server.url}/api/v1/weights/latest").content
    published = HttpClient(server.url).upload_weights(weights, step=7)
    uploader = threading.Thread(target=upload_forever)
    uploader.start()
    while len(acknowledged) < 10:
        time.sleep(0.05)
    errors = np.linspace(0.1, 0.9, 16).astype(np.float32)
    HttpClient(server.url).update_priorities(np.arange(16), errors)
    server.kill()  # while the uploader is still sending
    stop.set()
    uploader.join(timeout=60)
    acknowledged_games = sum(ack["games"] for ack in acknowledged)

    config = stored_config(server.data_dir)
    store = Store(server.data_dir, TICTACTOE, config)  # what a restart rebuilds
    assert acknowledged_games <= store.replay.total_games <= acknowledged_games + 8
    alpha = config.priority_alpha
    ids = np.arange(16)
    np.testing.assert_allclose(store.replay.priorities[ids % store.replay.capacity],
                               np.maximum(errors, 1e-3) ** alpha, rtol=1e-6)
    assert store.latest_weights().version == published == 2
    store.close()

    server.start()
    try:
        stats = server.stats()
        assert stats["games"] == store.replay.total_games
        assert (stats["version"], stats["step"]) == (2, 7)
        served = requests.get(f"{server.url}/api/v1/weights/latest")
        assert served.content == weights
        for ack in acknowledged:  # every acknowledged upload is there, under its numbers
            again = requests.post(f"{server.url}/api/v1/games",
                                  data=wire.encode_games(random_games(1)),
                                  headers={"X-Upload-Id": ack["upload_id"], **NPZ}).json()
            assert (again["first_game"], again["games"]) == (ack["first_game"], ack["games"])
    finally:
        server.stop()


def wait_for_games(server: ServerProcess, client: subprocess.Popen, count: int) -> None:
    """Until the server holds `count` games, while the client keeps running (120 s at most)."""
    deadline = time.monotonic() + 120
    while server.stats()["games"] < count:
        assert time.monotonic() < deadline and client.poll() is None
        time.sleep(0.2)


def test_selfplay_client_carries_on_across_a_server_restart(tmp_path):
    server = ServerProcess(tmp_path / "data", flags=("--num-games", "1000")).start()
    selfplay = subprocess.Popen(client_command(server, "selfplay", "--games", "64",
                                               "--games-per-upload", "16", "--client-seed", "2"),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_games(server, selfplay, 16)
        server.stop()
        time.sleep(2.0)  # the client keeps playing, then retries its upload
        server.start()
        output = selfplay.communicate(timeout=240)[0]
        assert selfplay.returncode == 0, output[-3000:]
        assert "self-play done: 64 games uploaded" in output
        assert server.stats()["games"] == 64  # none lost, none twice
    finally:
        if selfplay.poll() is None:
            selfplay.kill()
        server.stop()


def test_ctrl_c_stops_a_client_cleanly_and_the_server_keeps_its_games(tmp_path):
    server = ServerProcess(tmp_path / "data", flags=("--num-games", "1000")).start()
    selfplay = subprocess.Popen(client_command(server, "selfplay", "--games-per-upload", "16",
                                               "--client-seed", "3", launcher=MUZERO_WITH_CTRL_C),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_games(server, selfplay, 16)
        selfplay.send_signal(signal.SIGINT)
        output = selfplay.communicate(timeout=60)[0]
        assert selfplay.returncode == 130, output[-3000:]
        assert "muzero: interrupted" in output and "Traceback" not in output
        stored = server.stats()["games"]
        assert stored >= 16 and stored % 16 == 0  # whole uploads only
    finally:
        if selfplay.poll() is None:
            selfplay.kill()
        server.stop()


def test_restart_on_another_game_is_refused(tmp_path):
    store = Store(tmp_path, TICTACTOE, stored_config_for_tests())
    store.close()
    result = subprocess.run([sys.executable, "-m", "muzero", "server", "--data-dir",
                             str(tmp_path), "--game", "onearmbandit", "--port",
                             str(free_port())], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "holds a run of game 'tictactoe', not 'onearmbandit'" in result.stderr


# ----- the token -----

def test_token_guards_every_route(tmp_path, capsys):
    server = ServerProcess(tmp_path / "data", flags=("--token", "s3cret")).start()
    try:
        routes = [("GET", "/"), ("GET", "/play"), ("GET", "/api/v1/stats"),
                  ("GET", "/api/v1/config"), ("GET", "/api/v1/log"),
                  ("GET", "/api/v1/weights/latest"), ("GET", "/api/v1/weights/1"),
                  ("GET", "/api/v1/optimizer/1"), ("GET", "/api/v1/batch"),
                  ("POST", "/api/v1/games"), ("POST", "/api/v1/weights"),
                  ("POST", "/api/v1/priorities"), ("POST", "/api/v1/log"),
                  ("POST", "/api/v1/play"), ("POST", "/api/v1/play/x"),
                  ("GET", "/static/dashboard.js")]
        games = wire.encode_games(random_games(2))
        for method, route in routes:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                response = requests.request(method, server.url + route, data=games,
                                            headers=headers, allow_redirects=False)
                if route.startswith("/api/"):
                    assert response.status_code == 401, route
                    assert "token" in response.json()["error"]
                else:  # a browser is sent to the login form
                    assert response.status_code == 302, route
                    assert "/login" in response.headers["Location"]
        signed = HttpClient(server.url, token="s3cret")
        assert signed.stats()["games"] == 0  # nothing was stored by the refused uploads
        signed.add_games(random_games(2))
        assert signed.stats()["games"] == 2
        browser = requests.Session()
        refused = browser.post(f"{server.url}/login", data={"token": "nope"})
        assert refused.status_code == 401 and "wrong token" in refused.text
        signed_in = browser.post(f"{server.url}/login?next=/play", data={"token": "s3cret"})
        assert signed_in.status_code == 200 and "Play the server" in signed_in.text
        assert browser.get(f"{server.url}/api/v1/stats").json()["games"] == 2
        for command in ("selfplay", "train"):  # a client with the wrong token: told, no traceback
            assert main([command, "--server", server.url, "--token", "wrong"]) == 2
            assert (f"muzero: error: {server.url} refused GET config: 401 missing or wrong "
                    f"token") in capsys.readouterr().err
    finally:
        server.stop()


# ----- client -----

def test_client_gives_up_after_its_patience_on_a_dead_server():
    client = HttpClient(f"127.0.0.1:{free_port()}", patience=1.0)
    started = time.monotonic()
    with pytest.raises(ServerUnavailable, match="did not answer GET stats within 1 s"):
        client.stats()
    assert time.monotonic() - started >= 1.0  # it waited its patience (no upper bound: timing)


def test_client_retries_an_answer_cut_short():
    """A server killed while it sends its answer leaves the body short of its Content-Length;
    the client repeats the request (as after a refused connection) instead of raising."""
    answers = [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50\r\n"
               b"\r\n{\"ga", b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               b"Content-Length: 12\r\nConnection: close\r\n\r\n{\"games\": 3}"]
    listener = socket.create_server(("127.0.0.1", 0))
    requests_seen = []

    def serve():
        for answer in answers:
            connection, _ = listener.accept()
            with connection:
                requests_seen.append(connection.recv(65536).split(b"\r\n")[0])
                connection.sendall(answer)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    client = HttpClient(f"127.0.0.1:{listener.getsockname()[1]}", patience=10.0)
    assert client.stats() == {"games": 3}
    server.join(timeout=10)
    listener.close()
    assert requests_seen == [b"GET /api/v1/stats HTTP/1.1"] * 2


@pytest.mark.parametrize("given, expected", [
    ("box", "http://box:5000"), ("box:8000", "http://box:8000"),
    ("https://box.example/", "https://box.example"), ("http://10.0.0.2:5000", "http://10.0.0.2:5000")])
def test_server_addresses_are_normalised(given, expected):
    assert normalise_url(given) == expected


def test_an_upload_without_legal_moves_gets_those_the_search_visited_and_the_move_played():
    """Clients before legal moves were recorded: their uploads stay readable, and a reanalysing
    search may consider only moves known to be legal."""
    games = random_games(2, seed=7)
    games[0].policies[0] = np.eye(9, dtype=np.float32)[(games[0].actions[0] + 1) % 9]
    data = wire.read_npz(wire.encode_games(games), "games")
    data.pop("legal")
    for game, read in zip(games, wire.decode_games(wire.to_npz(data))):
        expected = game.policies > 0
        expected[np.arange(len(game)), game.actions] = True
        np.testing.assert_array_equal(read.legal, expected)
        assert not (read.legal & ~game.legal).any()
    assert wire.decode_games(wire.to_npz(data))[0].legal[0].sum() == 2  # visited and played


def test_store_rebuilds_the_same_replay_buffer(tmp_path):
    config = stored_config_for_tests().replace(replay_capacity=100)
    store = Store(tmp_path, TICTACTOE, config)
    for seed in range(6):  # 36+ games: the window of 100 positions evicts the oldest
        store.add_games(wire.encode_games(random_games(6, seed=seed)))
    batch = store.sample(32)
    store.update_priorities(batch.indices, np.linspace(0, 2, 32).astype(np.float32))
    expected, meta = store.replay.state()
    ingest = store.ingest_series()
    assert sum(bin_["games"] for bin_ in ingest) == 36
    store.close()
    rebuilt = Store(tmp_path, TICTACTOE, config)
    arrays, rebuilt_meta = rebuilt.replay.state()
    for name, array in expected.items():
        np.testing.assert_array_equal(arrays[name], array, err_msg=name)
    assert (rebuilt_meta["total_positions"], rebuilt_meta["total_games"]) == \
        (meta["total_positions"], meta["total_games"])
    assert rebuilt.ingest_series() == ingest  # read back from the uploads table
    rebuilt.close()


def test_priority_rows_of_positions_the_window_left_are_deleted(tmp_path):
    """A restart applies only the window's priorities: the rows of older positions go, and
    updates of them are not stored, so the table does not grow with every position played."""
    store = Store(tmp_path, TICTACTOE, stored_config_for_tests().replace(replay_capacity=100))
    store.add_games(wire.encode_games(random_games(6, seed=0)))
    store.update_priorities(np.arange(20), np.full(20, 0.5, np.float32))
    for seed in range(1, 6):
        store.add_games(wire.encode_games(random_games(6, seed=seed)))
    first = store.replay.games[0][0]
    assert first > 20  # the first upload has left the window
    newest = np.arange(first, first + 10)
    store.update_priorities(np.concatenate([np.arange(5), newest]), np.full(15, 0.25, np.float32))
    rows = store._db.execute("SELECT position_id FROM priorities ORDER BY position_id")
    assert [row[0] for row in rows] == newest.tolist()
    store.close()


def _games_kept(store: Store) -> list[tuple[bool, bool]]:
    """Per upload, oldest first: (whether it still holds games, whether a position of it is in
    the replay window)."""
    first = store.replay.games[0][0]
    rows = store._db.execute("SELECT length(data), first_position + num_positions FROM uploads "
                             "ORDER BY id")
    return [(size > 0, end > first) for size, end in rows]


def test_keep_games_window_empties_the_uploads_the_window_left_and_restarts_the_same(tmp_path):
    """--keep-games window (the default): an upload all of whose positions have left the
    replay window keeps its row (the chart, a retried upload id) but not its games; training
    sees the same window as with every game kept, and a restart rebuilds it. A folder of every
    game switched to window is emptied at start, saying so."""
    config = stored_config_for_tests().replace(replay_capacity=100)
    everything = Store(tmp_path / "all", TICTACTOE, config, keep_games="all")
    store = Store(tmp_path / "window", TICTACTOE, config)
    acks = []
    for seed in range(6):
        body = wire.encode_games(random_games(6, seed=seed))
        everything.add_games(body, upload_id=f"u{seed}")
        acks.append(store.add_games(body, upload_id=f"u{seed}"))
    kept = _games_kept(store)
    assert [games for games, _ in kept] == [in_window for _, in_window in kept]
    assert kept[0] == (False, False) and kept[-1] == (True, True)
    assert all(games for games, _ in _games_kept(everything))
    again = store.add_games(wire.encode_games(random_games(1)), upload_id="u0")
    assert (again["first_game"], again["games"]) == (acks[0]["first_game"], acks[0]["games"])
    expected = store.replay.state()[0]
    for name, array in everything.replay.state()[0].items():
        np.testing.assert_array_equal(expected[name], array, err_msg=name)
    ingest = store.ingest_series()
    store.close()
    everything.close()
    warnings = []
    rebuilt = Store(tmp_path / "window", TICTACTOE, config, warn=warnings.append)
    for name, array in rebuilt.replay.state()[0].items():
        np.testing.assert_array_equal(expected[name], array, err_msg=name)
    assert rebuilt.ingest_series() == ingest
    rebuilt.close()
    assert warnings == []  # nothing more to empty
    switched = Store(tmp_path / "all", TICTACTOE, config, warn=warnings.append)
    assert _games_kept(switched) == kept
    switched.close()
    emptied = sum(not games for games, _ in kept)
    assert warnings == [f"emptied the games of {emptied} uploads that have left the replay "
                        f"window (--keep-games window, the default; --keep-games all keeps "
                        f"every game)"]
    with pytest.raises(ValueError, match="--keep-games"):
        Store(tmp_path / "all", TICTACTOE, config, keep_games="some")


@pytest.mark.parametrize("keep_games", [(), ("--keep-games", "all")])
def test_the_server_command_passes_its_keep_flags_to_the_store(tmp_path, keep_games):
    """The server command's defaults and flags reach the store: the window's games only unless
    `--keep-games all`; the newest `--keep-versions` weights."""
    server = ServerProcess(tmp_path / "data", flags=("--replay-capacity", "100",
                                                     "--keep-versions", "1", *keep_games)).start()
    try:
        for seed in range(6):
            requests.post(f"{server.url}/api/v1/games", headers=NPZ,
                          data=wire.encode_games(random_games(6, seed=seed))).raise_for_status()
        weights = requests.get(f"{server.url}/api/v1/weights/latest").content
        for step in (3, 4):
            HttpClient(server.url).upload_weights(weights, step=step)
        summary = stored(server)
    finally:
        server.stop()
    db = sqlite3.connect(server.data_dir / "muzero.sqlite3")
    emptied = db.execute("SELECT COUNT(*) FROM uploads WHERE length(data) = 0").fetchone()[0]
    db.close()
    assert (0 < emptied < 6) if not keep_games else emptied == 0
    assert summary["files"] == ["v000001.weights.h5", "v000003.weights.h5"]  # step 0, newest


def _ingest_by_sql(db: sqlite3.Connection, min_bin_seconds: float) -> list[dict]:
    """The reference: the same bins by a GROUP BY over the uploads table."""
    first, last = db.execute("SELECT MIN(received), MAX(received) FROM uploads").fetchone()
    bin_seconds = max(min_bin_seconds, math.ceil((last - first) / 500 / 10.0) * 10.0)
    rows = db.execute("SELECT CAST(received / ? AS INTEGER) AS bin, SUM(num_games), "
                      "SUM(num_positions) FROM uploads GROUP BY bin ORDER BY bin",
                      (bin_seconds,)).fetchall()
    return [{"time": row[0] * bin_seconds, "games": row[1], "positions": row[2]} for row in rows]


@pytest.mark.parametrize("span", [50.0, 7 * 24 * 3600.0])  # 10 s bins; a week's, widened
def test_the_ingest_series_bins_as_a_group_by_over_the_uploads_table(span):
    rng = np.random.default_rng(4)
    received = np.sort(1.8e9 + rng.uniform(0, span, 3000))
    games = rng.integers(1, 65, 3000)
    positions = games * rng.integers(5, 10, 3000)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE uploads (received REAL, num_games INTEGER, num_positions INTEGER)")
    db.executemany("INSERT INTO uploads VALUES (?, ?, ?)",
                   zip(received.tolist(), games.tolist(), positions.tolist()))
    expected = _ingest_by_sql(db, 10.0)
    assert len(expected) == (5 if span < 100 else 498)  # bins of 10 s; of 1,210 s
    loaded = IngestSeries(list(zip(received.tolist(), games.tolist(), positions.tolist())))
    grown = IngestSeries([])
    for row in zip(received.tolist(), games.tolist(), positions.tolist()):
        grown.add(*row)  # past its first 1,024 rows
    assert loaded.bins() == grown.bins() == expected


def test_the_agent_average_comes_from_the_optimizer_state_or_falls_back_with_a_warning(tmp_path):
    """In process: a version's agent weights are its trained weights with the trainable ones
    replaced by the optimizer's averages; a damaged optimizer file serves the trained weights
    and says so."""
    config = stored_config_for_tests().replace(agent_averaging=4)
    warnings: list[str] = []
    store = Store(tmp_path / "data", TICTACTOE, config, warn=warnings.append)
    learner = Learner(network_for_game(TICTACTOE, config), config)
    state = learner.optimizer_state()
    averages = [index for index, variable in enumerate(learner.optimizer.variables)
                if variable.path.endswith("_average")]
    trained = learner.network.get_weights()
    for index, variable in zip(averages, learner.network.trainable_variables):
        state[index] = variable.numpy() + 1.0
    learner.network.save_weights_file(tmp_path / "w.weights.h5")
    added = store.add_weights((tmp_path / "w.weights.h5").read_bytes(),
                              wire.to_npz({f"v{i:04d}": a for i, a in enumerate(state)}), step=5)
    agent = store.weights.as_agent(added)
    network = network_for_game(TICTACTOE, config)
    network.load_weights_file(agent.path)
    learner.set_optimizer_state(state)
    expected = learner.agent_weights()  # Keras's own swap of the averages, as the trainer's
    for loaded, average in zip(network.get_weights(), expected):
        np.testing.assert_array_equal(loaded, average)
    assert all(not np.array_equal(a, t) for a, t in zip(network.get_weights(), trained))
    agent.path.unlink()
    added.optimizer_path.write_bytes(b"damaged")
    assert store.weights.as_agent(added).path == added.path
    assert "no average for the agent" in warnings[-1]
    store.close()


def test_old_weights_versions_are_pruned_but_not_the_agent_or_a_checkpoint_awaiting_evaluation(
        tmp_path):
    """A long run publishes a version every publish interval: the store keeps the newest
    `keep_versions`, the agent's, and the checkpoints whose evaluation has not come yet (an
    evaluated checkpoint that is not the agent can never become it), deletes the others'
    weights, optimizer and averaged-agent files, and says a pruned version is not kept.
    Restarted with fewer to keep, it prunes at once; a run without evaluations keeps no
    checkpoint past the newest versions."""
    config = stored_config_for_tests().replace(checkpoint_interval=10, num_steps=47,
                                               agent_averaging=4)
    store = Store(tmp_path / "data", TICTACTOE, config, keep_versions=3)
    learner = Learner(network_for_game(TICTACTOE, config), config)
    learner.network.save_weights_file(tmp_path / "w.weights.h5")
    weights = (tmp_path / "w.weights.h5").read_bytes()
    optimizer = wire.to_npz({f"v{i:04d}": a for i, a in enumerate(learner.optimizer_state())})
    draws, lost = {"wins": 0, "draws": 5, "losses": 0}, {"wins": 0, "draws": 4, "losses": 1}
    evaluations = {10: [draws, draws], 20: [draws, lost], 30: [draws, draws]}  # 30 ties 10
    for step in [5, 7, 10, 15, 20, 25, 30, 35, 40, 45, 47]:  # versions 2 to 12 (1: step 0)
        added = store.add_weights(weights, optimizer, step)
        if step == 5:
            store.weights.as_agent(added)  # writes v000002.agent.weights.h5 beside it
        if step in evaluations:
            store.append_log("evaluation", step, {"matches": {"minimax": evaluations[step]}})
    assert store.agent_weights().version == 8  # step 30: the later of the two best
    kept = [8, 10, 11, 12]  # the agent, the newest three, of which 40 and 47 await evaluation
    files = sorted(path.name for path in store.weights.folder.iterdir())
    assert files == sorted([f"v{v:06d}.weights.h5" for v in kept]
                           + [f"v{v:06d}.optimizer.npz" for v in kept]
                           + ["v000008.agent.weights.h5"])
    assert [store.weights.get(v).version for v in kept] == kept
    with pytest.raises(NotFound, match="weights version 4 is not kept"):
        store.weights_version(4)  # step 10, the agent until step 30 tied it
    with pytest.raises(NotFound, match="no weights version 13$"):
        store.weights_version(13)
    http = create_app(store).test_client()
    for route in ("weights/6", "optimizer/6"):  # step 20, evaluated worse
        answer = http.get(f"/api/v1/{route}")
        assert answer.status_code == 404 and "is not kept" in answer.json["error"]
    assert http.get("/api/v1/weights/11").status_code == 200
    (store.weights.folder / "v000011.optimizer.npz").unlink()  # as if pruned since looked up
    answer = http.get("/api/v1/optimizer/11")
    assert answer.status_code == 404 and "is not kept" in answer.json["error"]
    store.close()

    store = Store(tmp_path / "data", TICTACTOE, config, keep_versions=1)
    assert [row[0] for row in store._db.execute("SELECT version FROM versions")] == [8, 10, 12]
    assert not (store.weights.folder / "v000011.weights.h5").exists()
    assert store.latest_weights().version == 12 and store.agent_weights().version == 8
    store.close()
    with pytest.raises(ValueError, match="--keep-versions"):
        Store(tmp_path / "data", TICTACTOE, config, keep_versions=0)

    unevaluated = Store(tmp_path / "unevaluated", TICTACTOE,
                        config.replace(num_eval_games=0), keep_versions=2)
    for step in [10, 20, 30]:  # versions 2 to 4
        unevaluated.add_weights(weights, optimizer, step)
    assert [row[0] for row in unevaluated._db.execute("SELECT version FROM versions")] == [3, 4]
    unevaluated.close()


# ----- the pages, in a real browser -----

@pytest.fixture(scope="module")
def browser():
    chromedriver = shutil.which("chromedriver")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromedriver is None or chromium is None:
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.binary_location = chromium
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    yield driver
    driver.quit()


def _wait_for(driver, condition, timeout: float = 30.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def test_dashboard_draws_its_charts_with_data(run, browser):
    from selenium.webdriver.common.by import By

    server = run[0]
    browser.get(server.url + "/")
    _wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))
    stats = server.stats()
    entries = requests.get(f"{server.url}/api/v1/log").json()["entries"]
    rounds = sum(entry["kind"] == "losses" for entry in entries)
    assert browser.find_element(By.ID, "game").text == "tictactoe"
    assert browser.find_element(By.ID, "version").text == str(stats["version"])
    assert browser.find_element(By.ID, "games").text.startswith(str(stats["games"]))
    charts = {name: browser.find_element(By.ID, name)
              for name in ("losses", "evaluation", "ingest")}
    assert int(charts["losses"].get_attribute("data-series")) == 4  # value reward policy to-play
    assert int(charts["losses"].get_attribute("data-points")) == 4 * rounds
    # 2 evaluations x 2 opponents x 2 seats
    assert int(charts["evaluation"].get_attribute("data-points")) == 2 * 2 * 2
    assert int(charts["ingest"].get_attribute("data-points")) >= 1
    for chart in charts.values():
        assert chart.find_elements(By.CSS_SELECTOR, "polyline.series")


@pytest.mark.parametrize("seat", [0, 1])
def test_a_game_is_played_to_its_end_by_clicks(run, browser, seat):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    server = run[0]
    browser.get(server.url + "/play")
    _wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    def shown():
        return int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-shown"))

    def act(click) -> None:
        """Click, then wait until the page has drawn the server's answer (or an error)."""
        before = shown()
        click()
        _wait_for(browser, lambda d: shown() > before or d.find_element(By.ID, "error").text)
        assert browser.find_element(By.ID, "error").text == ""

    Select(browser.find_element(By.ID, "seat")).select_by_value(str(seat))
    act(browser.find_element(By.ID, "new-game").click)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#board button")) == 9
    clicks = 0
    while browser.find_element(By.ID, "result").get_attribute("data-over") != "true":
        legal = [button for button in browser.find_elements(By.CSS_SELECTOR, "#board button")
                 if button.is_enabled()]
        assert legal, "no clickable move while the game is on"
        act(legal[0].click)
        clicks += 1
        assert clicks <= 5
    assert browser.find_element(By.ID, "result").text.startswith("Game over")
    agent_rows = browser.find_elements(By.CSS_SELECTOR, "#moves tr.agent-move")
    assert len(agent_rows) >= clicks - 1 and agent_rows
    assert ":" in agent_rows[0].find_elements(By.TAG_NAME, "td")[3].text  # policy shown
    assert "wins" in browser.find_element(By.ID, "render").text or \
        "draw" in browser.find_element(By.ID, "render").text



# ----- the clients' pacing and prefetching -----

def test_selfplay_and_training_keep_the_runs_pace():
    from muzero.pace import Pace

    config = TICTACTOE.make_config().replace(num_games=1000, num_steps=2000,
                                             games_per_iteration=100)
    pace = Pace(config)
    assert pace.steps_allowed(0, 0) == 0
    assert pace.steps_allowed(500, 3000) == 1000
    assert pace.steps_allowed(1200, 9000) == 2000  # every game played: train to the end
    assert not pace.selfplay_ahead(99, 700, 0) and pace.selfplay_ahead(100, 700, 0)
    assert not pace.selfplay_ahead(599, 4000, 1000) and pace.selfplay_ahead(600, 4000, 1000)
    assert pace.selfplay_needed(999, 0) and not pace.selfplay_needed(1000, 0)
    assert pace.finished(1000, 7000, 2000) and not pace.finished(1000, 7000, 1999)


def test_pace_by_positions_trains_each_position_as_often_in_long_games():
    """Replay-ratio pacing: 8 samples a position at batch 256 is one step per 32 positions,
    whatever the games' length; self-play stops once the positions pay for every step."""
    from muzero.pace import Pace

    pace = Pace(TICTACTOE.make_config().replace(num_games=1000, num_steps=100, batch_size=256,
                                                samples_per_position=8.0,
                                                games_per_iteration=10))
    assert pace.steps_allowed(10, 320) == 10  # 10 short games
    assert pace.steps_allowed(11, 3200) == 100  # one long game more: capped at the budget
    assert pace.selfplay_needed(10, 320) and not pace.selfplay_needed(11, 3200)
    assert pace.finished(11, 3200, 100) and not pace.finished(11, 3200, 99)
    assert pace.steps_allowed(1000, 0) == 100  # the games' budget spent releases every step
    # ahead by one iteration: 10 games of 32 positions pay 10 steps
    assert not pace.selfplay_ahead(20, 640, 11) and pace.selfplay_ahead(20, 640, 10)


class RecordingReplay:
    def __init__(self, fail_after: int | None = None):
        self.drawn = 0
        self.updates = []
        self.fail_after = fail_after

    def sample(self, batch_size):
        if self.fail_after is not None and self.drawn >= self.fail_after:
            raise ConnectionError("server gone")
        assert len(self.updates) >= self.drawn - 1  # the fixed order: one step stale at most
        self.drawn += 1
        return self.drawn

    def update_priorities(self, indices, errors):
        self.updates.append(indices)


@pytest.mark.parametrize("lag", [0, 1])
def test_prefetcher_serves_batches_in_order_and_sends_every_update(lag):
    from muzero.loops import Prefetcher

    replay = RecordingReplay()
    with Prefetcher(replay, 4, 5, lag) as prefetched:
        for step in range(1, 6):
            assert prefetched.sample(4) == step
            # batch k is drawn only after the updates of batches before k - lag
            assert len(replay.updates) >= step - 1 - lag
            assert replay.drawn <= step + 1
            prefetched.update_priorities(step, None)
    assert replay.updates == [1, 2, 3, 4, 5] and replay.drawn == 5


def test_prefetcher_without_lag_draws_each_batch_after_every_earlier_update():
    """What prioritized replay assumes: batch k sees the priorities of batches 0 .. k-1."""
    from muzero.loops import Prefetcher

    class CheckingReplay(RecordingReplay):
        def sample(self, batch_size):
            assert len(self.updates) == self.drawn, "a batch was drawn before an update landed"
            return super().sample(batch_size)

    replay = CheckingReplay()
    with Prefetcher(replay, 4, 6, lag=0) as prefetched:
        for step in range(1, 7):
            assert prefetched.sample(4) == step
            prefetched.update_priorities(step, None)
    assert replay.updates == [1, 2, 3, 4, 5, 6]


def test_prefetcher_raises_the_samplers_error_in_the_learner():
    from muzero.loops import Prefetcher

    with pytest.raises(ConnectionError, match="server gone"), \
            Prefetcher(RecordingReplay(fail_after=2), 4, 5) as prefetched:
        for step in range(5):
            prefetched.sample(4)
            prefetched.update_priorities(step, None)


def test_a_synchronous_checkpoint_continues_on_the_server(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        _upload_a_checkpoint(server, tmp_path)
    finally:
        server.stop()


def _upload_a_checkpoint(server: ServerProcess, tmp_path) -> None:
    from muzero.checkpoint import load_checkpoint
    from muzero.synchronous import SynchronousRun

    config = stored_config(server.data_dir).replace(
        num_games=32, num_steps=8, checkpoint_interval=8, num_eval_games=0,
        games_per_iteration=16)
    SynchronousRun(TICTACTOE, config, tmp_path / "sync", progress_bars=False,
                   log=lambda line: None).run()
    checkpoint = load_checkpoint(tmp_path / "sync")
    before = server.stats()
    result = subprocess.run([sys.executable, "-m", "muzero", "upload", "--server", server.url,
                             "--checkpoint", str(tmp_path / "sync")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    after = server.stats()
    assert after["games"] == before["games"] + 32
    assert (after["version"], after["step"]) == (before["version"] + 1, 8)
    served = requests.get(f"{server.url}/api/v1/weights/latest").content
    assert served == checkpoint.weights_path.read_bytes()
    optimizer = requests.get(f"{server.url}/api/v1/optimizer/{after['version']}").content
    assert optimizer == (checkpoint.path / "optimizer.npz").read_bytes()
