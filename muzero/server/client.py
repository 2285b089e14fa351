"""The HTTP client of the server: the `Replay` and (through `HttpWeights`) the `Weights`
interface of the actor and learner loops, so the loops of synchronous mode run unchanged
against a server on this machine or another.

Network failures, timeouts and 5xx answers are retried with exponential backoff (capped, with
jitter) for as long as `patience` allows, by default forever: a self-play client keeps its
games until the server has acknowledged them, across a server restart. Each upload carries an
id, so a retried upload whose first answer was lost is not stored twice. A 4xx answer is the
caller's mistake and raises `ServerError` with the server's message at once.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import requests

from muzero.checkpoint import optimizer_archive
from muzero.config import Config
from muzero.network import MuZeroNetwork
from muzero.records import GameRecord
from muzero.replay import StoredPositions, TrainingBatch
from muzero.server import wire
from muzero.server.archive import MAX_REANALYSE_POSITIONS
from muzero.server.errors import ServerError, ServerUnavailable

RETRIED_STATUS = {500, 502, 503, 504}


def normalise_url(url: str, default_port: int = 5000) -> str:
    """'host', 'host:port' or a full URL -> 'http://host:port' without a trailing slash."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
        if ":" not in url.split("://", 1)[1]:
            url += f":{default_port}"
    return url


class HttpClient:
    def __init__(self, url: str, token: str | None = None, client_id: str | None = None,
                 timeout: float = 30.0, patience: float | None = None, max_backoff: float = 10.0,
                 log: Callable[[str], None] | None = None):
        self.url = normalise_url(url)
        self.client_id = client_id or uuid.uuid4().hex[:12]
        self.timeout = timeout
        self.patience = patience
        self.max_backoff = max_backoff
        self.log = log
        self.session = requests.Session()
        self.session.headers["X-Client-Id"] = self.client_id
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    # ----- transport -----

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        started = time.monotonic()
        attempt = 0
        while True:
            problem = None
            try:
                response = self.session.request(method, f"{self.url}/api/v1/{path}",
                                                timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as error:
                # ChunkedEncodingError: the server died while sending its answer (the body cut
                # short); every request is safe to repeat (uploads carry an id), so retry it
                problem = f"{type(error).__name__}"
            else:
                if response.status_code not in RETRIED_STATUS:
                    if 400 <= response.status_code < 500:
                        raise ServerError(f"{self.url} refused {method} {path}: "
                                          f"{response.status_code} {_error_message(response)}")
                    return response
                problem = f"HTTP {response.status_code}"
            waited = time.monotonic() - started
            if self.patience is not None and waited >= self.patience:
                raise ServerUnavailable(f"{self.url} did not answer {method} {path} within "
                                        f"{self.patience:.0f} s (last: {problem})")
            delay = min(self.max_backoff, 0.2 * 2 ** attempt) * (0.5 + random.random() / 2)
            if self.log is not None and (attempt in (0, 5) or attempt % 20 == 19):
                self.log(f"server {self.url} unavailable ({problem}); retrying")
            time.sleep(delay)
            attempt += 1

    # ----- run state -----

    def config(self) -> Config:
        return Config.from_json(self.request("GET", "config").text)

    def stats(self) -> dict:
        return self.request("GET", "stats").json()

    def append_log(self, kind: str, step: int, data: dict) -> None:
        self.request("POST", "log", json={"kind": kind, "step": step, "data": data})

    def training_log(self, since: int = 0) -> dict:
        return self.request("GET", "log", params={"since": since}).json()

    # ----- Replay -----

    def add_games(self, games: Sequence[GameRecord]) -> dict:
        """Upload games; return once the server has committed them (retrying until then)."""
        data = wire.encode_games(games)
        upload_id = uuid.uuid4().hex
        return self.request("POST", "games", data=data,
                            headers={"X-Upload-Id": upload_id,
                                     "Content-Type": "application/octet-stream"}).json()

    def sample(self, batch_size: int) -> TrainingBatch:
        return wire.decode_batch(self.request("GET", "batch",
                                              params={"size": batch_size}).content)

    def update_priorities(self, indices: np.ndarray, errors: np.ndarray) -> None:
        self.request("POST", "priorities", data=wire.encode_priorities(indices, errors),
                     headers={"Content-Type": "application/octet-stream"})

    def positions_to_reanalyse(self, count: int) -> StoredPositions:
        """Stored games for reanalysis, at most `MAX_REANALYSE_POSITIONS` positions a request
        (the caller asks again for the rest)."""
        count = min(count, MAX_REANALYSE_POSITIONS)
        return wire.decode_positions(self.request("GET", "reanalyse",
                                                  params={"positions": count}).content)

    def refresh_targets(self, position_ids: np.ndarray, policies: np.ndarray,
                        root_values: np.ndarray) -> int:
        return self.request("POST", "reanalysed",
                            data=wire.encode_targets(position_ids, policies, root_values),
                            headers={"Content-Type": "application/octet-stream"}
                            ).json()["refreshed"]

    # ----- weight files -----

    def latest_weights(self, known_version: int | None) -> tuple[int, int, bytes] | None:
        """(version, step, HDF5 bytes) of the newest weights, or None if `known_version` is it."""
        headers = {"If-None-Match": f'"v{known_version}"'} if known_version else {}
        response = self.request("GET", "weights/latest", headers=headers)
        if response.status_code == 304:
            return None
        return (int(response.headers["X-Weights-Version"]),
                int(response.headers["X-Training-Step"]), response.content)

    def agent_weights(self) -> tuple[int, int, bytes]:
        """(version, step, HDF5 bytes) of the run's agent: the best evaluated weights
        (muzero/selection.py)."""
        response = self.request("GET", "weights/agent")
        return (int(response.headers["X-Weights-Version"]),
                int(response.headers["X-Training-Step"]), response.content)

    def optimizer_state(self, version: int) -> bytes | None:
        try:
            return self.request("GET", f"optimizer/{version}").content
        except ServerError:
            return None

    def upload_weights(self, weights: bytes, step: int, optimizer: bytes | None = None) -> int:
        files = {"weights": ("network.weights.h5", weights)}
        if optimizer is not None:
            files["optimizer"] = ("optimizer.npz", optimizer)
        return self.request("POST", "weights", data={"step": str(step)},
                            files=files).json()["version"]


def _error_message(response: requests.Response) -> str:
    try:
        return response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


class HttpWeights:
    """The `Weights` interface over `HttpClient`, decoding and encoding HDF5 files through
    `network` (the actor's or learner's own network). With `optimizer_state`, each publish also
    sends the learner's optimizer state, so a restarted trainer continues where it stopped."""

    def __init__(self, client: HttpClient, network: MuZeroNetwork,
                 optimizer_state: Callable[[], list[np.ndarray]] | None = None):
        self.client = client
        self.network = network
        self.optimizer_state = optimizer_state
        self.step = 0

    def latest(self, known_version: int | None) -> tuple[int, list[np.ndarray]] | None:
        found = self.client.latest_weights(known_version)
        if found is None:
            return None
        version, self.step, data = found
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "network.weights.h5"
            path.write_bytes(data)
            self.network.load_weights_file(path)
        return version, self.network.get_weights()

    def publish(self, weights: list[np.ndarray], step: int) -> int:
        self.network.set_weights(weights)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "network.weights.h5"
            self.network.save_weights_file(path)
            optimizer = None
            if self.optimizer_state is not None:
                optimizer = wire.to_npz(optimizer_archive(self.optimizer_state()))
            return self.client.upload_weights(path.read_bytes(), step, optimizer)
