"""Property-based fuzzing of the real server process: valid uploads, priorities, weights, log
bodies and batch requests, mutated at the byte and at the array level. Every answer is 2xx or
4xx, never 5xx, and a refused request leaves everything stored as it was.

The default run tries a few hundred cases in all (derandomized, so CI sees the same ones); the
slow tier (`pytest --runslow`) tries thousands, freshly drawn each time.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import NPZ, ServerProcess, random_games, server_with_games, stored

from muzero.server import wire

DEFAULT_CASES = 100  # per route family: 5 families, 500 cases in all
SLOW_CASES = 1000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from server_with_games(tmp_path_factory.mktemp("fuzz") / "data", 16)


@pytest.fixture
def cases(request) -> int:
    return SLOW_CASES if request.config.getoption("--runslow") else DEFAULT_CASES


def fuzz(cases: int, request):
    """Hypothesis settings for `cases` examples: the same examples on every default run."""
    return settings(max_examples=cases, deadline=None, database=None,
                    derandomize=not request.config.getoption("--runslow"),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def check(server: ServerProcess, method: str, path: str, **kwargs) -> int:
    """Send one request; never a 5xx, and nothing stored changes unless it was accepted."""
    before = stored(server)
    response = requests.request(method, f"{server.url}/api/v1/{path}", timeout=120, **kwargs)
    assert response.status_code < 500, (path, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert stored(server) == before, (path, response.status_code, response.text[:300])
    return response.status_code


# ----- mutations -----

class Body(bytes):
    """Bytes that Hypothesis reports by size, not by content (a weights file is 300 kB)."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes>"


@st.composite
def mutated_bytes(draw, data: bytes) -> bytes:
    """Flipped bytes, a truncation, an insertion or a repeated slice of `data`."""
    data = bytearray(data)
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "repeat"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif kind == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif kind == "insert":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=64))
    else:
        start = draw(st.integers(0, len(data) - 1))
        piece = data[start:start + draw(st.integers(1, 256))]
        data[start:start] = piece * draw(st.integers(1, 8))
    return Body(data)


EXTREMES = [np.nan, np.inf, -np.inf, 3e38, -3e38, 1e30, -1.0, 0.0, 2.0 ** 31, -(2.0 ** 31),
            2.0 ** 63, 1e-45]


@st.composite
def mutated_arrays(draw, arrays: dict[str, np.ndarray]) -> bytes:
    """An archive of `arrays` with one array's values, dtype or shape changed, or an array
    dropped or added."""
    arrays = {name: array.copy() for name, array in arrays.items()}
    name = draw(st.sampled_from(sorted(arrays)))
    array = arrays[name]
    kind = draw(st.sampled_from(["value", "dtype", "shape", "drop", "extra"]))
    if kind == "value" and array.size:
        flat = array.reshape(-1)
        value = draw(st.sampled_from(EXTREMES))
        with np.errstate(invalid="ignore", over="ignore"):
            flat[draw(st.integers(0, flat.size - 1))] = (
                value if array.dtype.kind == "f" else np.array(value).astype(array.dtype)
                if np.isfinite(value) else 0)
    elif kind == "dtype":
        arrays[name] = array.astype(draw(st.sampled_from(
            [np.float64, np.float16, np.int64, np.int8, np.uint32, np.bool_, np.complex64])))
    elif kind == "shape":
        change = draw(st.sampled_from(["axis", "rows", "transpose", "scalar"]))
        arrays[name] = (array[None] if change == "axis" else
                        array[:max(0, len(array) - draw(st.integers(1, 3)))]
                        if change == "rows" and array.ndim else
                        array.T if change == "transpose" else np.asarray(array.reshape(-1)[:1]
                                                                            ).reshape(()))
    elif kind == "drop":
        del arrays[name]
    elif kind == "extra":
        arrays[draw(st.sampled_from(["extra", "lengths2", name + "_"]))] = array
    return Body(wire.to_npz(arrays))


def _arrays(data: bytes) -> dict[str, np.ndarray]:
    return wire.read_npz(data, "fixture")


# ----- the routes -----

VALID_NPZ = {  # the route's valid body (the fixture's server holds 16 games: over 32 positions)
    "games": lambda: wire.encode_games(random_games(3, seed=21)),
    "priorities": lambda: wire.encode_priorities(np.arange(32), np.linspace(0.1, 1.0, 32)),
}


@pytest.mark.parametrize("route", sorted(VALID_NPZ))
def test_fuzzed_npz_uploads(server, cases, request, route):
    valid = VALID_NPZ[route]()

    @fuzz(cases, request)
    @given(body=st.one_of(mutated_bytes(valid), mutated_arrays(_arrays(valid))))
    def run(body):
        check(server, "POST", route, data=body, headers=NPZ)

    run()


def test_fuzzed_weights(server, cases, request):
    weights = requests.get(f"{server.url}/api/v1/weights/latest").content
    steps = st.one_of(st.integers(-10, 2 ** 70).map(str), st.text(max_size=30))

    @fuzz(cases, request)
    @given(body=mutated_bytes(weights), step=steps)
    def run(body, step):
        check(server, "POST", "weights", data={"step": step},
              files={"weights": ("w.weights.h5", io.BytesIO(body))})

    run()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, min_size=1, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, min_size=1, max_size=4),
    max_leaves=20)


def test_fuzzed_log_and_play_bodies(server, cases, request):
    bodies = st.one_of(
        st.fixed_dictionaries({"kind": st.sampled_from(["losses", "evaluation", "x"])
                               | json_values, "step": json_values, "data": json_values}),
        json_values)
    raw = st.binary(max_size=200)

    @fuzz(cases, request)
    @given(route=st.sampled_from(["log", "play", "play/0123abcd"]), body=bodies,
           garbage=st.none() | raw)
    def run(route, body, garbage):
        if garbage is None:
            check(server, "POST", route, json=body)
        else:
            check(server, "POST", route, data=garbage,
                  headers={"Content-Type": "application/json"})

    run()


def test_fuzzed_queries(server, cases, request):
    values = st.one_of(st.integers(-2 ** 70, 2 ** 70).map(str),
                       st.text(max_size=40))

    @fuzz(cases, request)
    @given(route=st.sampled_from(["batch?size=", "log?since=", "log?limit=", "weights/",
                                  "optimizer/"]), value=values)
    def run(route, value):
        check(server, "GET", route + requests.utils.quote(value, safe=""))

    run()

