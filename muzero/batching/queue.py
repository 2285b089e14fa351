"""An inference queue: several actor threads submit batches, worker threads run merged calls.

Each actor plays its own slice of games in lockstep and has one request in flight at a time. A
worker takes the first waiting request and merges more until it holds its share of the clients
(num_clients / num_workers, rounded up), the merged batch reaches `max_batch_size`, or
`max_wait_s` has passed. With one worker every step is one big call; with several, that many calls
run at once, which on a small CPU with single-threaded TF calls keeps every core busy (see
README, Performance). Meanwhile the actors whose results are back do their GIL-free tree search.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, NamedTuple

import numpy as np

from muzero.search.model import InitialOutput, Model, RecurrentOutput

_CLOSE = object()


class _Request(NamedTuple):
    inputs: tuple[np.ndarray, ...]
    result: Future


class InferenceQueue:
    """Merges concurrent calls of `function(*arrays) -> NamedTuple of arrays` along axis 0."""

    def __init__(self, function: Callable[..., Any], num_clients: int, max_batch_size: int,
                 max_wait_s: float, num_workers: int = 1, name: str = "inference"):
        if min(num_clients, max_batch_size, num_workers) < 1 or max_wait_s < 0:
            raise ValueError("num_clients, max_batch_size and num_workers must be >= 1, "
                             "max_wait_s >= 0")
        self._function = function
        self.requests_per_call = -(-num_clients // num_workers)
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._requests: queue.Queue = queue.Queue()
        self._workers = [threading.Thread(target=self._serve, name=f"{name}-{i}", daemon=True)
                         for i in range(num_workers)]
        for worker in self._workers:
            worker.start()

    def __call__(self, *inputs: np.ndarray) -> Any:
        """Submit one batch and wait for its own slice of the merged result."""
        if not any(worker.is_alive() for worker in self._workers):
            raise RuntimeError("the inference queue is closed")
        request = _Request(inputs, Future())
        self._requests.put(request)
        return request.result.result()

    def close(self) -> None:
        for _ in self._workers:
            self._requests.put(_CLOSE)
        for worker in self._workers:
            worker.join()

    def _collect(self, first: _Request) -> tuple[list[_Request], bool]:
        """Gather requests after `first` until a flush condition; also say if close was asked."""
        batch, rows = [first], len(first.inputs[0])
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.requests_per_call and rows < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            try:
                request = self._requests.get(timeout=remaining) if remaining > 0 else \
                    self._requests.get_nowait()
            except queue.Empty:
                break
            if request is _CLOSE:
                return batch, True
            batch.append(request)
            rows += len(request.inputs[0])
        return batch, False

    def _serve(self) -> None:
        closing = False
        while not closing:
            first = self._requests.get()
            if first is _CLOSE:
                break
            batch, closing = self._collect(first)
            self._run(batch)

    def _run(self, batch: Sequence[_Request]) -> None:
        try:
            merged = [np.concatenate(arrays) for arrays in zip(*(r.inputs for r in batch))]
            outputs = self._function(*merged)
        except Exception as error:  # every waiting caller gets the error, the worker lives on
            for request in batch:
                request.result.set_exception(error)
            return
        start = 0
        for request in batch:
            stop = start + len(request.inputs[0])
            request.result.set_result(type(outputs)(*(field[start:stop] for field in outputs)))
            start = stop


class QueuedModel:
    """A `Model` whose two calls go through inference queues shared by several actor threads."""

    def __init__(self, model: Model, num_clients: int, max_batch_size: int, max_wait_s: float,
                 num_workers: int = 1):
        self.initial = InferenceQueue(model.initial_inference, num_clients, max_batch_size,
                                      max_wait_s, num_workers, name="initial-inference")
        self.recurrent = InferenceQueue(model.recurrent_inference, num_clients, max_batch_size,
                                        max_wait_s, num_workers, name="recurrent-inference")

    def initial_inference(self, observations: np.ndarray) -> InitialOutput:
        return self.initial(observations)

    def recurrent_inference(self, hidden: np.ndarray, actions: np.ndarray) -> RecurrentOutput:
        return self.recurrent(hidden, actions)

    def close(self) -> None:
        self.initial.close()
        self.recurrent.close()

    def __enter__(self) -> QueuedModel:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
