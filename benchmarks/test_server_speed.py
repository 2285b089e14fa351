"""The server under load on loopback: games ingested per second from concurrent uploaders,
training batches (tic-tac-toe defaults: batch 256, unroll 5) served per second to concurrent
trainers, and request latency under each load (goals: >= 5,000 games/s, >= 200 batches/s,
p99 <= 50 ms).

The real server process runs with the game's default config; the clients are threads of this
process sending prepared bodies, so the figures are the server's (plus loopback), not the cost
of playing the games. Both share the machine's cores.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import requests
from server_helpers import NPZ, ServerProcess, random_games

from muzero.server import wire
from muzero.server.ingest import IngestSeries

CLIENTS = 4
GAMES_PER_UPLOAD = 64
UPLOADS_PER_CLIENT = 40
BATCHES_PER_CLIENT = 100


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = ServerProcess(tmp_path_factory.mktemp("bench") / "data", flags=(
        "--hidden-size", "128", "--batch-size", "256", "--num-unroll-steps", "5",
        "--replay-capacity", "30000")).start()
    yield process
    process.stop()


def _load(work: list[list], send) -> tuple[float, np.ndarray]:
    """Run each thread's list of requests through `send`; wall seconds and latencies [ms]."""
    latencies: list[float] = []
    lock = threading.Lock()

    def client(items):
        session = requests.Session()
        mine = []
        for item in items:
            started = time.perf_counter()
            response = send(session, item)
            mine.append((time.perf_counter() - started) * 1000)
            assert response.status_code in (200, 201), response.text
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(items,)) for items in work]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, np.array(latencies)


def _record_latencies(record, benchmark, name: str, latencies: np.ndarray) -> None:
    record(f"{name} p50 ms", float(np.percentile(latencies, 50)), benchmark)
    record(f"{name} p99 ms", float(np.percentile(latencies, 99)), benchmark)


def test_games_ingested_per_second(benchmark, record, server):
    games = random_games(GAMES_PER_UPLOAD * 8, seed=1)
    bodies = [wire.encode_games(games[i:i + GAMES_PER_UPLOAD])
              for i in range(0, len(games), GAMES_PER_UPLOAD)]
    work = [[bodies[(c + i) % len(bodies)] for i in range(UPLOADS_PER_CLIENT)]
            for c in range(CLIENTS)]
    url = f"{server.url}/api/v1/games"
    before = server.stats()["games"]
    seconds, latencies = benchmark.pedantic(
        lambda: _load(work, lambda session, body: session.post(url, data=body, headers=NPZ)),
        rounds=1, iterations=1)
    uploaded = CLIENTS * UPLOADS_PER_CLIENT * GAMES_PER_UPLOAD
    assert server.stats()["games"] == before + uploaded
    record("server games ingested/s", uploaded / seconds, benchmark)
    _record_latencies(record, benchmark, f"server upload of {GAMES_PER_UPLOAD} games",
                      latencies)


def test_batches_served_per_second(benchmark, record, server):
    if server.stats()["games"] == 0:
        requests.post(f"{server.url}/api/v1/games",
                      data=wire.encode_games(random_games(512, seed=2)), headers=NPZ)
    url = f"{server.url}/api/v1/batch?size=256"
    work = [[None] * BATCHES_PER_CLIENT for _ in range(CLIENTS)]
    seconds, latencies = benchmark.pedantic(
        lambda: _load(work, lambda session, _: session.get(url)), rounds=1, iterations=1)
    record("server batches served/s (batch 256, K=5)", CLIENTS * BATCHES_PER_CLIENT / seconds,
           benchmark)
    _record_latencies(record, benchmark, "server batch request", latencies)


def test_priority_updates_per_second(benchmark, record, server):
    """The learner posts the priorities of every batch it trains on (256 positions of the
    replay window)."""
    if server.stats()["games"] == 0:
        requests.post(f"{server.url}/api/v1/games",
                      data=wire.encode_games(random_games(512, seed=2)), headers=NPZ)
    stats = server.stats()
    window = (stats["positions"] - stats["buffer_positions"], stats["positions"])
    rng = np.random.default_rng(0)
    bodies = [wire.encode_priorities(rng.integers(*window, 256),
                                     rng.random(256).astype(np.float32)) for _ in range(20)]
    url = f"{server.url}/api/v1/priorities"
    work = [[bodies[(c + i) % len(bodies)] for i in range(BATCHES_PER_CLIENT)]
            for c in range(CLIENTS)]
    seconds, latencies = benchmark.pedantic(
        lambda: _load(work, lambda session, body: session.post(url, data=body, headers=NPZ)),
        rounds=1, iterations=1)
    record("server priority updates/s (256 positions)", CLIENTS * BATCHES_PER_CLIENT / seconds,
           benchmark)
    _record_latencies(record, benchmark, "server priority update", latencies)


def test_dashboard_ingest_chart_of_a_weeks_uploads(benchmark, record):
    """The dashboard's games-over-time bins, asked every 2 s under the store's lock, over a
    week of the README's asynchronous tic-tac-toe (320,000 uploads of 64 games)."""
    uploads = 320_000
    rng = np.random.default_rng(0)
    received = np.sort(1.8e9 + rng.uniform(0, 7 * 24 * 3600, uploads))
    series = IngestSeries(list(zip(received.tolist(), [64] * uploads, [448] * uploads)))
    bins = benchmark(series.bins)
    assert sum(bin_["games"] for bin_ in bins) == 64 * uploads
    record("dashboard ingest bins of 320,000 uploads ms", benchmark.stats["mean"] * 1000,
           benchmark)
