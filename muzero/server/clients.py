"""The table of recent clients, for the dashboard: who played or trained in the last minute, and
how fast.

Client ids come from requests, so the table is bounded: an entry silent for the window is
forgotten when a new client arrives, and beyond `MAX_CLIENTS` the least recently seen goes first.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

CLIENT_WINDOW_SECONDS = 60.0
MAX_CLIENTS = 1000


@dataclass
class ClientActivity:
    """What one client did recently."""

    kind: str
    last_seen: float
    events: deque = field(default_factory=deque)  # (time, games, batches)

    def record(self, now: float, games: int = 0, batches: int = 0) -> None:
        self.last_seen = now
        self.events.append((now, games, batches))
        while self.events and self.events[0][0] < now - CLIENT_WINDOW_SECONDS:
            self.events.popleft()

    def rates(self, now: float) -> dict[str, float]:
        recent = [event for event in self.events if event[0] >= now - CLIENT_WINDOW_SECONDS]
        span = CLIENT_WINDOW_SECONDS
        return {"games_per_second": sum(e[1] for e in recent) / span,
                "batches_per_second": sum(e[2] for e in recent) / span}


class ClientTable:
    """Recent clients by id; safe to call from many threads."""

    def __init__(self) -> None:
        self.entries: dict[str, ClientActivity] = {}
        self._lock = threading.Lock()

    def record(self, client: str, kind: str, now: float, games: int = 0,
               batches: int = 0) -> None:
        """Count what `client` just did (an upload of `games`, `batches` served)."""
        with self._lock:
            self._entry(client, kind, now).record(now, games=games, batches=batches)

    def seen(self, client: str, kind: str, now: float) -> None:
        """Note `client` without counting games or batches (a weights upload)."""
        with self._lock:
            self._entry(client, kind, now).last_seen = now

    def recent(self, now: float) -> list[dict]:
        """The clients seen within the window, with their rates."""
        with self._lock:
            return [{"id": name, "kind": activity.kind,
                     "seconds_ago": round(now - activity.last_seen, 1), **activity.rates(now)}
                    for name, activity in self.entries.items()
                    if now - activity.last_seen <= CLIENT_WINDOW_SECONDS]

    def _entry(self, client: str, kind: str, now: float) -> ClientActivity:
        activity = self.entries.get(client)
        if activity is None:
            for name in [name for name, old in self.entries.items()
                         if old.last_seen < now - CLIENT_WINDOW_SECONDS]:
                del self.entries[name]
            while len(self.entries) >= MAX_CLIENTS:
                del self.entries[min(self.entries, key=lambda n: self.entries[n].last_seen)]
            activity = self.entries[client] = ClientActivity(kind, now)
        return activity
