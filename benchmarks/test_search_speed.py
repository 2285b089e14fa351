"""Tree work alone: network outputs are precomputed, so only the search is timed.

B in {1, 64, 256}, S = 50, A = 9, P = 2, for the Numba kernels and the plain-Python reference,
with MuZero's search and (kernels only) Gumbel MuZero's and MuZero's with Q normalised per node.
Also: first-call compile time and the time to load the compiled kernels from Numba's cache in a
fresh process.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from muzero.search import NumbaTree, ReferenceTree, SearchSettings
from muzero.search.tree import RULE_UCB

SIMULATIONS, ACTIONS, PLAYERS = 50, 9, 2
SETTINGS = SearchSettings(num_simulations=SIMULATIONS, discount=1.0, rule=RULE_UCB,
                          pb_c_init=1.25, pb_c_base=19652.0, dirichlet_alpha=0.3,
                          exploration_fraction=0.25, freezing_moves=0, temperature=1.0)


def precomputed_outputs(batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    root = dict(legal=rng.random((batch, ACTIONS)) < 0.8,
                to_play=rng.integers(0, PLAYERS, batch).astype(np.int32),
                value=rng.normal(size=(batch, PLAYERS)).astype(np.float32),
                policy_logits=rng.normal(size=(batch, ACTIONS)).astype(np.float32),
                noise=rng.gamma(0.3, size=(batch, ACTIONS)))
    root["legal"][:, 0] = True
    steps = [dict(reward=rng.normal(size=(batch, PLAYERS)).astype(np.float32),
                  value=rng.normal(size=(batch, PLAYERS)).astype(np.float32),
                  to_play=rng.integers(0, PLAYERS, batch).astype(np.int32),
                  policy_logits=rng.normal(size=(batch, ACTIONS)).astype(np.float32))
             for _ in range(SIMULATIONS)]
    return root, steps


def search_one_move(tree, root, steps):
    tree.expand_roots(**root)
    for step in steps:
        tree.select()
        tree.expand_and_backup(**step)
    return tree.root_policy()


@pytest.mark.parametrize("batch", [1, 64, 256])
@pytest.mark.parametrize("implementation, search", [("numba", "muzero"), ("numba", "gumbel"),
                                                    ("numba", "node"), ("reference", "muzero")])
def test_search_speed(benchmark, record, implementation, search, batch):
    tree_class = NumbaTree if implementation == "numba" else ReferenceTree
    settings = SETTINGS
    root, steps = precomputed_outputs(batch)
    if search == "gumbel":
        settings = dataclasses.replace(SETTINGS, gumbel=True, gumbel_noise=True,
                                       exploration_fraction=0.0)
        root["noise"] = np.random.default_rng(1).gumbel(size=(batch, ACTIONS))
    elif search == "node":
        settings = dataclasses.replace(SETTINGS, node_bounds=True)
    tree = tree_class(batch, ACTIONS, PLAYERS, settings)
    search_one_move(tree, root, steps)  # warm-up: compile (or load) the kernels
    rounds = 5 if implementation == "reference" else 50
    benchmark.pedantic(search_one_move, args=(tree, root, steps), rounds=rounds, iterations=1,
                       warmup_rounds=1)
    name = {"muzero": implementation, "gumbel": f"{implementation} gumbel",
            "node": f"{implementation} node bounds"}[search]
    record(f"search {name} B={batch} simulations/s",
           batch * SIMULATIONS / benchmark.stats.stats.min, benchmark)


TIMED_FIRST_CALL = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {bench_dir!r})
    from test_search_speed import ACTIONS, PLAYERS, SETTINGS, precomputed_outputs, search_one_move
    from muzero.search import NumbaTree
    tree = NumbaTree(64, ACTIONS, PLAYERS, SETTINGS)
    root, steps = precomputed_outputs(64)
    start = time.perf_counter()
    search_one_move(tree, root, steps)
    print(time.perf_counter() - start)
""")


def test_compile_and_cache_load_time(benchmark, record, tmp_path):
    """First call in a fresh process: with an empty cache (compile), then with a warm one."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    script = TIMED_FIRST_CALL.format(bench_dir=os.path.dirname(__file__))

    def first_call_seconds() -> float:
        output = subprocess.run([sys.executable, "-c", script], env=env, check=True,
                                capture_output=True, text=True).stdout
        return float(output.strip().splitlines()[-1])

    compile_seconds = first_call_seconds()
    cached_seconds = benchmark.pedantic(first_call_seconds, rounds=3, iterations=1)
    record("search first call, compiling (s)", compile_seconds, benchmark)
    record("search first call, from cache in a fresh process (s)", cached_seconds, benchmark)
