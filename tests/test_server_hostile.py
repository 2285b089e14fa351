"""The server against hostile input and faults, each case against the real server process on
loopback: the status, the message, and the stored data (SQLite rows, weight files) unchanged by
every refused request."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests
from server_helpers import (
    NPZ,
    TICTACTOE,
    ServerProcess,
    error_text,
    free_port,
    random_games,
    server_with_games,
    stored,
)

from muzero.config import Config
from muzero.network import network_for_game
from muzero.server import wire
from muzero.training import build_optimizer

MiB = 1024 * 1024
README = Path(__file__).parents[1] / "README.md"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from server_with_games(tmp_path_factory.mktemp("hostile") / "data", 8)


def refused(server: ServerProcess, status: int, message: str, method: str, path: str,
            **kwargs) -> requests.Response:
    """Send a request, check the refusal and that nothing stored changed."""
    before = stored(server)
    url = path if path.startswith("http") else f"{server.url}{path}"
    response = requests.request(method, url, timeout=120, allow_redirects=False, **kwargs)
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert message.lower() in error_text(response).lower(), error_text(response)[:500]
    assert stored(server) == before
    return response


def games_with(**changes) -> bytes:
    """One legal tic-tac-toe game's upload with arrays changed by functions."""
    arrays = wire.read_npz(wire.encode_games(random_games(1, seed=5)), "games")
    for name, change in changes.items():
        arrays[name] = change(arrays[name].copy())
    return wire.to_npz(arrays)


def _set(row: int, value: float):
    def change(rewards):
        rewards[row] = value
        return rewards
    return change


# ----- 1. the README's async commands, as written -----

def _readme_async_commands() -> list[str]:
    section = README.read_text().split("## Asynchronous mode", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.startswith("python -m muzero")]


def test_the_readme_async_commands_run_as_written_from_a_fresh_directory(tmp_path):
    """The README's three commands in a new working directory (its relative --data-dir), the
    clients stopped early by extra flags: the latest weights are served (they were a 500)."""
    server_command, selfplay_command, train_command = _readme_async_commands()
    assert "--data-dir runs/" in server_command  # a relative folder, as users type it
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 5000)) == 0:
            pytest.skip("port 5000, the README's, is in use on this machine")
    executable = [sys.executable, "-m", "muzero"]
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen(executable + server_command.split()[3:], cwd=tmp_path,
                                  stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                requests.get("http://127.0.0.1:5000/api/v1/stats", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.3)
        latest = requests.get("http://127.0.0.1:5000/api/v1/weights/latest", timeout=30)
        assert latest.status_code == 200 and latest.content.startswith(b"\x89HDF")
        selfplay = subprocess.run(executable + selfplay_command.split()[3:]
                                  + ["--games", "16", "--games-per-upload", "16"],
                                  cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert selfplay.returncode == 0, selfplay.stderr[-3000:]
        assert "self-play done: 16 games uploaded" in selfplay.stdout
        train = subprocess.run(executable + train_command.split()[3:]
                               + ["--num-steps", "4", "--num-games", "16",
                                  "--num-eval-games", "0", "--publish-interval", "2"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert train.returncode == 0, train.stderr[-3000:]
        assert "training done: step 4" in train.stdout
        stats = requests.get("http://127.0.0.1:5000/api/v1/stats", timeout=10).json()
        assert stats["games"] == 16 and stats["step"] == 4
        assert (tmp_path / "runs" / "ttt" / "weights").is_dir()  # relative to where it started
    finally:
        server.terminate()
        server.wait(timeout=30)


# ----- 2. rewards the game cannot produce -----

@pytest.mark.parametrize("change, message", [
    (_set(-1, 3e38), "but the rules give"),           # inf once summed in float32
    (_set(-1, 5.0), "but the rules give"),
    (_set(-1, -7.0), "but the rules give"),
    (_set(0, 1.0), "move 0: rewards [1.0, 1.0], but the rules give [0.0, 0.0]"),  # ends nothing
])
def test_rewards_are_checked_by_the_rules(server, change, message):
    refused(server, 400, message, "POST", "/api/v1/games",
            data=games_with(rewards=change), headers=NPZ)


def test_root_values_that_overflow_the_targets_are_refused():
    """Finite numbers whose n-step targets or priorities are infinite in float32 (the server's
    buffer runs this check on every upload; tic-tac-toe's targets never bootstrap, so it is
    shown here on a buffer that does)."""
    from muzero.replay import ReplayBuffer

    config = TICTACTOE.make_config().replace(td_steps=1)
    buffer = ReplayBuffer(config, (3, 3, 3), 9, 2, np.random.default_rng(0))
    game = random_games(1, seed=4)[0]
    values = np.full_like(game.root_values, 3e38)
    values[::2] *= -1
    with pytest.raises(ValueError, match="overflow float32 in the value targets"):
        buffer.add_games([dataclasses.replace(game, root_values=values)])
    assert buffer.total_games == 0


# ----- 3. decompression bombs -----

def _zip(members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue()


def _bomb(total_bytes: int) -> bytes:
    """A valid-looking upload whose observations inflate to `total_bytes` of zeros."""
    buffer = io.BytesIO()
    rows = total_bytes // (27 * 4)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("observations.npy", "w", force_zip64=True) as member:
            member.write(_npy_header((rows, 3, 3, 3)))
            zeros = bytes(MiB)
            for _ in range(rows * 27 * 4 // MiB):
                member.write(zeros)
            member.write(bytes(rows * 27 * 4 % MiB))
        for name, array in wire.read_npz(wire.encode_games(random_games(1)), "g").items():
            if name != "observations":
                archive.writestr(f"{name}.npy", _npy_bytes(array))
    return buffer.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _memory(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) * 1024
            for key in ("VmRSS", "VmHWM")}


def peak_growth(server: ServerProcess, action) -> int:
    """How far the server's peak resident memory rose above its resident memory during
    `action` (where the kernel lets the peak mark be reset; else above the old peak)."""
    pid = server.process.pid
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    before = _memory(pid)
    action()
    growth = _memory(pid)["VmHWM"] - before["VmRSS" if reset else "VmHWM"]
    print(f"peak resident memory growth: {growth / MiB:.1f} MiB")
    return growth


def test_a_decompression_bomb_is_refused_before_it_inflates(server):
    bomb = _bomb(2 * 1024 * MiB)
    assert len(bomb) < 3 * MiB
    growth = peak_growth(server, lambda: refused(server, 400, "more than the", "POST",
                                                 "/api/v1/games", data=bomb, headers=NPZ))
    assert growth <= 64 * MiB
    assert server.stats()["games"] >= 8  # and it keeps serving


def test_a_weights_file_claiming_gigabytes_is_refused_before_it_is_read(server, tmp_path):
    """An HDF5 dataset of 2^29 floats that were never written: the file is small, reading it
    would allocate 2 GiB. The muzero tag is copied from real weights, so only the size check
    stands in the way."""
    import h5py

    real = tmp_path / "real.weights.h5"
    real.write_bytes(requests.get(f"{server.url}/api/v1/weights/latest").content)
    bomb = tmp_path / "bomb.weights.h5"
    with h5py.File(real, "r") as source, h5py.File(bomb, "w") as target:
        for key, value in source.attrs.items():
            target.attrs[key] = value
        target.create_dataset("vars/0", shape=(2 ** 29,), dtype="f4", chunks=(2 ** 20,),
                              compression="gzip")
    assert bomb.stat().st_size < 64 * 1024
    growth = peak_growth(server, lambda: refused(
        server, 400, "its arrays take 2147483648 bytes", "POST", "/api/v1/weights",
        data={"step": "1"}, files={"weights": ("w.weights.h5", bomb.read_bytes())}))
    assert growth <= 64 * MiB


@pytest.mark.parametrize("route", ["games", "priorities"])
def test_an_array_header_claiming_2_to_the_40_rows_is_refused(server, route):
    data = _zip({"observations.npy" if route == "games" else "indices.npy":
                 _npy_header((2 ** 40,)) + bytes(16)})
    assert len(data) < 400
    refused(server, 400, "declares shape (1099511627776,)", "POST", f"/api/v1/{route}",
            data=data, headers=NPZ)


@pytest.mark.parametrize("members, message", [
    ({"observations.npy": b"not an array at all"}, "no .npy magic"),
    ({f"a{index}.npy": b"" for index in range(40)}, "lists 40 entries"),
    ({"policies.npy": _npy_header((4,), "|O") + bytes(32)}, "expected numbers"),
])
def test_archives_of_strange_members_are_refused(server, members, message):
    refused(server, 400, message, "POST", "/api/v1/games", data=_zip(members), headers=NPZ)


# ----- 4. bodies are bounded before anything reads them -----

def test_a_huge_body_without_a_token_is_refused_unread(tmp_path):
    server = ServerProcess(tmp_path / "data", flags=("--token", "s3cret")).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            connection.sendall(f"POST /api/v1/games HTTP/1.1\r\nHost: 127.0.0.1:{server.port}"
                               f"\r\nContent-Type: application/octet-stream\r\nContent-Length: "
                               f"{300 * MiB}\r\n\r\n".encode() + bytes(1024))
            answer = b""
            while chunk := connection.recv(4096):  # the answer, without sending the rest
                answer += chunk
            answer = answer.decode(errors="replace")
        assert answer.startswith("HTTP/1.1 413"), answer[:300]
        assert "exceeds max_body" in answer
        assert server.stats(headers={"Authorization": "Bearer s3cret"})["games"] == 0
    finally:
        server.stop()


# ----- 5. a client's mistake is a 4xx, never a 500 -----

DEEP = b'{"kind": "losses", "step": 1, "data": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"


@pytest.mark.parametrize("method, path, kwargs, status, message", [
    ("GET", f"/api/v1/log?since={2 ** 63}", {}, 400, "must be <= 9223372036854775807"),
    ("GET", f"/api/v1/log?since={'9' * 5000}", {}, 400, "must be an integer"),
    ("GET", f"/api/v1/weights/{2 ** 64}", {}, 404, "no weights version"),
    ("GET", f"/api/v1/optimizer/{2 ** 70}", {}, 404, "no weights version"),
    ("GET", f"/api/v1/batch?size={2 ** 63}", {}, 400, "'size' must be <="),
    ("GET", "/api/v1/batch?size=70000", {}, 400, "batch size must be in [1, 65536]"),
    ("POST", "/api/v1/log", {"json": {"kind": "losses", "step": 2 ** 63, "data": {}}}, 400,
     "log step must be an integer in [0, 2^63)"),
    ("POST", "/api/v1/log", {"data": DEEP, "headers": {"Content-Type": "application/json"}},
     400, "nests deeper than"),
    ("POST", "/api/v1/play", {"data": b'{"seat": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
                              "headers": {"Content-Type": "application/json"}}, 400,
     "nests deeper than"),
    ("POST", "/api/v1/log", {"data": b'{"kind": "losses"}', "headers": {}}, 415,
     "Content-Type: application/json"),
    ("POST", "/api/v1/log", {"json": {"kind": ["losses"], "step": 1, "data": {}}}, 400,
     "log kind must be one of"),
    ("POST", "/api/v1/play/" + "x" * 5000, {"json": {"action": 0}}, 404, "no game"),
])
def test_client_mistakes_are_4xx(server, method, path, kwargs, status, message):
    refused(server, status, message, method, path, **kwargs)


def test_a_weights_step_past_2_to_the_63_is_refused_and_leaves_no_file(server):
    weights = requests.get(f"{server.url}/api/v1/weights/latest").content
    refused(server, 400, "step must be in [0, 2^63)", "POST", "/api/v1/weights",
            data={"step": str(2 ** 63)}, files={"weights": ("w.weights.h5", weights)})


def test_a_line_break_in_the_sign_in_target_cannot_split_the_answer(tmp_path):
    server = ServerProcess(tmp_path / "data", flags=("--token", "s3cret")).start()
    try:
        for path in ("/play%0d%0aSet-Cookie:%20evil=1", "/%0d%0aX:y"):
            response = requests.get(server.url + path, allow_redirects=False)
            assert response.status_code in (302, 404), response.status_code
            assert "evil" not in response.headers.get("Set-Cookie", "")
            assert "\n" not in response.headers.get("Location", "")
        signed_in = requests.post(f"{server.url}/login?next=/play%0d%0aX-Injected:1",
                                  data={"token": "s3cret"}, allow_redirects=False)
        assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/"
        assert "X-Injected" not in signed_in.headers
    finally:
        server.stop()


# ----- 6. cross-site writes and foreign names -----

def test_a_cross_site_write_is_refused(server):
    games = wire.encode_games(random_games(2, seed=9))
    refused(server, 403, "another site", "POST", "/api/v1/games", data=games,
            headers={"Origin": "https://evil.example", "Content-Type": "text/plain"})
    refused(server, 403, "another site", "POST", "/api/v1/games", data=games,
            headers={**NPZ, "Origin": "https://evil.example"})
    refused(server, 403, "another site", "POST", "/api/v1/games", data=games,
            headers={**NPZ, "Sec-Fetch-Site": "cross-site"})
    refused(server, 415, "Content-Type: application/octet-stream", "POST", "/api/v1/games",
            data=games, headers={"Content-Type": "text/plain"})
    same_site = requests.post(f"{server.url}/api/v1/games", data=games,
                              headers={**NPZ, "Origin": server.url,
                                       "Sec-Fetch-Site": "same-origin"})
    assert same_site.status_code == 201  # the server's own pages may write


def test_a_foreign_host_name_is_refused(server):
    response = refused(server, 400, "is not a name of this server", "GET", "/api/v1/stats",
                       headers={"Host": "rebound.evil.example"})
    assert "--allow-host" in response.json()["error"]
    refused(server, 400, "is not a name of this server", "GET", "/",
            headers={"Host": "rebound.evil.example:5000"})
    for name in ("localhost", "127.0.0.1", "[::1]"):
        assert requests.get(f"{server.url}/api/v1/stats",
                            headers={"Host": f"{name}:{server.port}"}).status_code == 200


def test_allowed_host_names_are_served(tmp_path):
    server = ServerProcess(tmp_path / "data", flags=("--allow-host", "box.lan")).start()
    try:
        assert requests.get(f"{server.url}/api/v1/stats",
                            headers={"Host": "box.lan:5000"}).status_code == 200
        assert requests.get(f"{server.url}/api/v1/stats",
                            headers={"Host": "other.lan"}).status_code == 400
    finally:
        server.stop()


def test_a_public_address_without_a_token_refuses_to_start(tmp_path):
    result = subprocess.run([sys.executable, "-m", "muzero", "server", "--game", "tictactoe",
                             "--data-dir", str(tmp_path / "data"), "--host", "0.0.0.0",
                             "--port", str(free_port())],
                            capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items() if k != "MUZERO_TOKEN"})
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token" in result.stderr
    assert "--allow-no-token" in result.stderr
    assert not (tmp_path / "data").exists()


# ----- 7. sign-in -----

def test_sign_in_is_safe(tmp_path):
    server = ServerProcess(tmp_path / "data", flags=("--token", "s3cret")).start()
    try:
        session = requests.Session()
        for target in ("/\t/evil.example/", "/%09/evil.example/", "//evil.example/",
                       "https://evil.example/", "/\\evil.example", "/play"):
            response = session.post(f"{server.url}/login", params={"next": target},
                                    data={"token": "s3cret"}, allow_redirects=False)
            assert response.status_code == 302
            assert response.headers["Location"] == ("/play" if target == "/play" else "/")
        cookie = session.cookies.get("muzero_session")
        assert cookie and "s3cret" not in cookie and "s3cret" not in str(session.cookies)
        assert session.get(f"{server.url}/api/v1/stats").status_code == 200
        forged = requests.get(f"{server.url}/api/v1/stats",
                              cookies={"muzero_session": cookie[:-4] + "0000"})
        assert forged.status_code == 401
        by_address = requests.get(f"{server.url}/api/v1/stats",  # with a token: any name
                                  headers={"Host": "10.1.2.3:5000",
                                           "Authorization": "Bearer s3cret"})
        assert by_address.status_code == 200
        guesser = requests.Session()
        answers = [guesser.post(f"{server.url}/login", data={"token": f"guess{i}"}).status_code
                   for i in range(7)]
        assert answers[:5] == [401] * 5 and answers[5:] == [429, 429]
        locked = guesser.post(f"{server.url}/login", data={"token": "s3cret"},
                              allow_redirects=False)
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
        assert "too many wrong tokens" in locked.text
    finally:
        server.stop()


# ----- 8. weights and optimizer state -----

def _config(server: ServerProcess) -> Config:
    return Config.from_json(requests.get(f"{server.url}/api/v1/config").text)


def test_weights_with_nan_values_are_refused(server, tmp_path):
    network = network_for_game(TICTACTOE, _config(server))
    network.set_weights([np.full_like(w, np.nan) if index == 0 else w
                         for index, w in enumerate(network.get_weights())])
    network.save_weights_file(tmp_path / "nan.weights.h5")
    refused(server, 400, "non-finite", "POST", "/api/v1/weights", data={"step": "3"},
            files={"weights": ("w.weights.h5", (tmp_path / "nan.weights.h5").read_bytes())})
    play = requests.post(f"{server.url}/api/v1/play", json={"seat": 0})
    assert play.status_code == 201  # the play page still works


def _optimizer_state(server: ServerProcess) -> list[np.ndarray]:
    config = _config(server)
    optimizer = build_optimizer(config)
    optimizer.build(network_for_game(TICTACTOE, config).trainable_variables)
    return [variable.numpy() for variable in optimizer.variables]


def test_an_optimizer_state_that_does_not_fit_the_network_is_refused(server):
    weights = requests.get(f"{server.url}/api/v1/weights/latest").content
    state = _optimizer_state(server)
    last = len(state) - 1  # a moment of the last layer's bias: float
    shapes = [s.copy() for s in state]
    shapes[last] = np.zeros(shapes[last].shape + (2,), shapes[last].dtype)
    nans = [s.copy() for s in state]
    nans[last] = np.full_like(nans[last], np.nan)
    cases = [(state[:-1], "optimizer state has"), (shapes, f"array {last} has shape"),
             (nans, "non-finite")]
    for arrays, message in cases:
        archive = wire.to_npz({f"v{index:04d}": a for index, a in enumerate(arrays)})
        refused(server, 400, message, "POST", "/api/v1/weights", data={"step": "3"},
                files={"weights": ("w.weights.h5", weights), "optimizer": ("o.npz", archive)})
    fits = wire.to_npz({f"v{index:04d}": a for index, a in enumerate(state)})
    accepted = requests.post(f"{server.url}/api/v1/weights", data={"step": "3"},
                             files={"weights": ("w.weights.h5", weights),
                                    "optimizer": ("o.npz", fits)})
    assert accepted.status_code == 201


# ----- 9, 10. the data folder: one server, recovery -----

def test_a_second_server_on_the_same_folder_refuses(tmp_path):
    first = ServerProcess(tmp_path / "data").start()
    try:
        result = subprocess.run([sys.executable, "-m", "muzero", "server", "--data-dir",
                                 str(first.data_dir), "--port", str(free_port())],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2
        assert f"in use by another server (pid {first.process.pid}" in result.stderr
        assert first.stats()["games"] == 0  # the first one keeps serving
    finally:
        first.stop()


@pytest.mark.parametrize("damage, message", [
    ("file", "is a file, not a data folder: give another --data-dir"),
    ("database", "muzero.sqlite3: not a readable SQLite database (file is not a database); "
                 "restore the folder from a backup"),
])
def test_a_data_folder_that_is_not_one_is_named_and_left_as_it_is(tmp_path, capsys, damage,
                                                                    message):
    """A --data-dir naming a file, or a folder whose database is not SQLite, gets a usage error
    before anything is opened for writing, and its bytes stay as they were."""
    from muzero.__main__ import main

    data_dir = tmp_path / "data"
    if damage == "file":
        data_dir.write_bytes(b"notes")
        damaged = data_dir
    else:
        data_dir.mkdir()
        damaged = data_dir / "muzero.sqlite3"
        damaged.write_bytes(b"not a database, but someone's games" * 100)
    before = damaged.read_bytes()
    assert main(["server", "--game", "tictactoe", "--data-dir", str(data_dir), "--port",
                 str(free_port())]) == 2
    assert message in capsys.readouterr().err
    assert damaged.read_bytes() == before
    assert sorted(path.name for path in tmp_path.rglob("*")) == sorted(
        {"data", damaged.name})


def test_a_port_in_use_is_named_before_a_data_folder_is_made(tmp_path, capsys):
    """A second server on a taken port (another folder): a usage error naming the address, and
    no run started in its folder (waitress found out only after the store was built)."""
    from muzero.__main__ import main

    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        assert main(["server", "--game", "tictactoe", "--data-dir", str(tmp_path / "data"),
                     "--port", str(port)]) == 2
    assert (f"cannot listen on 127.0.0.1:{port} (Address already in use): another server may "
            f"hold the port; give another --port") in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_a_lost_or_damaged_weights_file_falls_back_to_the_newest_intact_one(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        initial = requests.get(f"{server.url}/api/v1/weights/latest").content
        for step in (10, 20, 30):
            requests.post(f"{server.url}/api/v1/weights", data={"step": str(step)},
                          files={"weights": ("w.weights.h5", initial)}).raise_for_status()
        assert server.stats()["version"] == 4
    finally:
        server.kill()
    weights = server.data_dir / "weights"
    (weights / "v000004.weights.h5").unlink()  # lost
    (weights / "v000003.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))  # damaged
    (weights / ".upload-abc.weights.h5").write_bytes(b"half")  # a killed upload's leftover
    (server.data_dir / ".upload-dir").mkdir()
    server.start()
    try:
        log = server.log.read_text()
        assert "weights version 4 dropped: its file weights/v000004.weights.h5 is missing" in log
        assert "weights version 3 dropped" in log and "damaged/v000003.weights.h5" in log
        assert "serving weights version 2" in log
        assert "removed .upload-abc.weights.h5" in log
        assert not (weights / ".upload-abc.weights.h5").exists()
        assert not (server.data_dir / ".upload-dir").exists()
        latest = requests.get(f"{server.url}/api/v1/weights/latest")
        assert latest.status_code == 200 and latest.headers["X-Weights-Version"] == "2"
        assert latest.content == initial
        assert requests.get(f"{server.url}/api/v1/weights/4").status_code == 404
        new = requests.post(f"{server.url}/api/v1/weights", data={"step": "40"},
                            files={"weights": ("w.weights.h5", initial)}).json()
        assert new["version"] == 5  # never a number given before
    finally:
        server.stop()


# ----- 11. bounded growth -----

def test_log_entries_are_bounded_and_the_log_comes_in_pages(server):
    big = {"kind": "losses", "step": 1, "data": {"blob": "x" * (60 * MiB)}}
    refused(server, 400, "the JSON body takes", "POST", "/api/v1/log",
            data=json.dumps(big), headers={"Content-Type": "application/json"})
    refused(server, 400, "at most 65536", "POST", "/api/v1/log",
            json={"kind": "losses", "step": 1, "data": {"blob": "x" * 100_000}})
    first_id = requests.get(f"{server.url}/api/v1/log?since=0&limit=10000").json()
    since = first_id["entries"][-1]["id"] if first_id["entries"] else 0
    for step in range(25):
        requests.post(f"{server.url}/api/v1/log",
                      json={"kind": "losses", "step": step, "data": {"value": step}}
                      ).raise_for_status()
    pages, steps = 0, []
    while True:
        page = requests.get(f"{server.url}/api/v1/log", params={"since": since, "limit": 10}
                            ).json()
        pages += 1
        steps += [entry["step"] for entry in page["entries"]]
        if not page["more"]:
            break
        since = page["entries"][-1]["id"]
    assert pages == 3 and steps == list(range(25))
    refused(server, 400, "'limit' must be <= 10000", "GET", "/api/v1/log?limit=10001")


def test_logged_entries_that_are_not_evaluations_do_not_break_the_agent(server):
    """The agent is chosen from the trainer's logged evaluations; entries of another form are
    no candidates, and an evaluation at a step without weights is none either."""
    agent = f"{server.url}/api/v1/weights/agent"
    before = requests.get(agent)
    assert before.status_code == 200
    for data in ({}, {"matches": "x"}, {"matches": {"m": [{"wins": "a"}]}},
                 {"matches": {"m": [7]}}, {"returns": {"mean": "abc"}}, {"returns": 3},
                 {"matches": {"m": [{"wins": 0, "draws": 0, "losses": 0}]}}):
        requests.post(f"{server.url}/api/v1/log", json={"kind": "evaluation", "step": 0,
                                                        "data": data}).raise_for_status()
    requests.post(f"{server.url}/api/v1/log", json={
        "kind": "evaluation", "step": 12345, "data": {"returns": {"mean": 1e9}}}
                  ).raise_for_status()
    after = requests.get(agent)
    assert after.status_code == 200
    assert after.headers["X-Weights-Version"] == before.headers["X-Weights-Version"]
    assert after.headers["X-Training-Step"] != "12345"


def test_made_up_client_ids_do_not_grow_the_client_table(server):
    for index in range(60):
        requests.get(f"{server.url}/api/v1/batch?size=1",
                     headers={"X-Client-Id": f"made-up-{index}"}).raise_for_status()
    clients = server.stats()["clients"]
    assert len(clients) >= 60  # shown while recent; the table's bound is tested in-process
    bad = requests.get(f"{server.url}/api/v1/batch?size=1",
                       headers={"X-Client-Id": "tab\there"})
    assert bad.status_code == 200
    assert all("\t" not in client["id"] for client in server.stats()["clients"])


def test_the_client_table_forgets_old_and_surplus_clients(tmp_path, monkeypatch):
    from muzero.server import clients
    from muzero.server.storage import Store

    monkeypatch.setattr(clients, "MAX_CLIENTS", 50)
    store = Store(tmp_path, TICTACTOE, TICTACTOE.make_config().replace(hidden_size=16))
    try:
        store.add_games(wire.encode_games(random_games(2)))
        for index in range(120):
            store.sample(1, client=f"c{index}")
        table = store.clients.entries
        assert len(table) == 50 and "c119" in table and "c0" not in table
        for activity in table.values():
            activity.last_seen -= clients.CLIENT_WINDOW_SECONDS + 1
        store.sample(1, client="fresh")
        assert list(table) == ["fresh"]
    finally:
        store.close()


def test_a_poisoned_upload_stored_by_an_older_server_is_left_out_at_restart(tmp_path):
    """Uploads stored before rewards were checked are checked again when the buffer is
    rebuilt: a poisoned one is skipped with a warning, the others keep their position ids."""
    from muzero.server.storage import Store

    config = TICTACTOE.make_config().replace(hidden_size=16)
    store = Store(tmp_path, TICTACTOE, config)
    acks = [store.add_games(wire.encode_games(random_games(3, seed=seed))) for seed in range(3)]
    expected_ids = store.replay.position_id.copy()
    store.close()
    db = sqlite3.connect(tmp_path / "muzero.sqlite3")
    db.execute("UPDATE uploads SET data = ? WHERE upload_id = ?",
               (games_with(rewards=_set(-1, 3e38)), acks[1]["upload_id"]))
    db.commit()
    db.close()
    warnings: list[str] = []
    rebuilt = Store(tmp_path, TICTACTOE, config, warn=warnings.append)
    try:
        assert len(warnings) == 1 and "left out of the replay buffer" in warnings[0]
        assert "but the rules give" in warnings[0]
        assert rebuilt.replay.total_games == 9 and rebuilt.replay.num_games == 6
        kept = [game for game in rebuilt.replay.games]
        assert kept[0][0] == 0 and kept[3][0] == acks[2]["first_position"]
        rows = np.arange(acks[2]["first_position"], rebuilt.replay.total_positions)
        np.testing.assert_array_equal(rebuilt.replay.position_id[rows], expected_ids[rows])
        assert np.isfinite(rebuilt.sample(16).target_values).all()
    finally:
        rebuilt.close()
