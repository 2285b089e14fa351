import threading
import time
from typing import NamedTuple

import numpy as np
import pytest
from search_models import RandomModel

from muzero.batching.queue import InferenceQueue, QueuedModel


class Doubled(NamedTuple):
    values: np.ndarray
    ids: np.ndarray


class RecordingFunction:
    """Doubles its input and remembers every merged batch size it was called with."""

    def __init__(self, delay_s=0.0):
        self.batch_sizes = []
        self.delay_s = delay_s

    def __call__(self, values, ids):
        self.batch_sizes.append(len(values))
        time.sleep(self.delay_s)
        return Doubled(values * 2.0, ids.copy())


def test_each_concurrent_caller_gets_exactly_its_own_rows():
    function = RecordingFunction(delay_s=0.002)
    threads, submitters, rounds = [], 8, 40
    inference = InferenceQueue(function, num_clients=submitters, max_batch_size=1000,
                               max_wait_s=0.005)
    errors = []

    def submitter(index):
        rng = np.random.default_rng(index)
        for round_ in range(rounds):
            size = int(rng.integers(1, 20))
            values = rng.normal(size=(size, 3)).astype(np.float32)
            ids = np.full(size, index * 1000 + round_, np.int64)
            result = inference(values, ids)
            own = np.array_equal(result.values, values * 2.0) and np.array_equal(result.ids, ids)
            if not own:
                errors.append((index, round_))

    for index in range(submitters):
        threads.append(threading.Thread(target=submitter, args=(index,)))
        threads[-1].start()
    for thread in threads:
        thread.join()
    inference.close()
    assert errors == []
    assert len(function.batch_sizes) < submitters * rounds  # requests really were merged
    assert max(function.batch_sizes) > 19


def test_flushes_when_every_client_has_submitted_without_waiting_the_deadline():
    """With a one-hour deadline, the single client's call can only return if the queue flushes
    as soon as every client has a request in."""
    function = RecordingFunction()
    inference = InferenceQueue(function, num_clients=1, max_batch_size=1000, max_wait_s=3600.0)
    results = []
    caller = threading.Thread(target=lambda: results.append(inference(np.zeros((3, 1)),
                                                                      np.zeros(3))))
    caller.start()
    caller.join(timeout=60)
    assert not caller.is_alive() and function.batch_sizes == [3]
    inference.close()


def test_errors_reach_every_caller_and_the_queue_survives():
    calls = []

    def flaky(values):
        calls.append(len(values))
        if len(calls) == 1:
            raise RuntimeError("network exploded")
        return Doubled(values, values)

    inference = InferenceQueue(flaky, num_clients=1, max_batch_size=10, max_wait_s=0.0)
    with pytest.raises(RuntimeError, match="network exploded"):
        inference(np.zeros(2))
    assert inference(np.ones(2)).values.tolist() == [1.0, 1.0]
    inference.close()
    with pytest.raises(RuntimeError, match="closed"):
        inference(np.ones(2))


def test_queued_model_gives_the_same_answers_as_the_model():
    model = RandomModel(observation_size=4, num_actions=3, num_players=2, seed=0)
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(6, 4)).astype(np.float32)
    with QueuedModel(model, num_clients=2, max_batch_size=64, max_wait_s=0.001) as queued:
        direct, through_queue = model.initial_inference(observations), \
            queued.initial_inference(observations)
        actions = rng.integers(0, 3, 6).astype(np.int32)
        recurrent = queued.recurrent_inference(direct.hidden, actions)
    for a, b in zip(direct, through_queue):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.recurrent_inference(direct.hidden, actions), recurrent):
        np.testing.assert_array_equal(a, b)


def test_several_workers_run_calls_at_the_same_time():
    """Two workers, two clients: both calls must be inside the function together (a barrier)."""
    both_inside = threading.Barrier(2, timeout=10)

    def meet(values):
        both_inside.wait()  # raises BrokenBarrierError if the calls were serialised
        return Doubled(values * 2.0, values)

    inference = InferenceQueue(meet, num_clients=2, max_batch_size=100, max_wait_s=0.0,
                               num_workers=2)
    results = {}

    def call(index):
        results[index] = inference(np.full(3, float(index))).values

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    inference.close()
    assert results[0].tolist() == [0.0] * 3 and results[1].tolist() == [2.0] * 3
