"""What stands between the network and the app: bounded JSON, the Host and Origin checks, the
sign-in session and its rate limit, safe redirects.

- **Host**: without a token, a request must name this server (the address it listens on, a
  loopback name, or a name given with `--allow-host`), so that a web page on another site cannot
  reach a server on loopback by pointing its own name at 127.0.0.1 (DNS rebinding). With a token
  any name is served: such a page cannot send the token.
- **Origin**: a browser marks every cross-site write with `Origin` (and `Sec-Fetch-Site`); a
  write from another site is refused, so a page the user visits cannot upload games or weights
  to a server without a token.
- **Sessions**: the sign-in cookie is a signed, expiring session, never the token itself.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import socket
import threading
import time
from collections import OrderedDict, deque
from urllib.parse import urlsplit

import numpy as np

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")
SAFE_NEXT = re.compile(r"/(?![/\\])[A-Za-z0-9/_.\-]*")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


class JsonError(ValueError):
    """A JSON body that is malformed, too large or too deeply nested."""


def parse_json(raw: bytes, max_bytes: int, max_depth: int):
    """Parse a JSON body after bounding its size and nesting: Python's parser recurses once per
    level, so depth is measured first, on the bytes, with strings removed."""
    if len(raw) > max_bytes:
        raise JsonError(f"the JSON body takes {len(raw)} bytes, at most {max_bytes}")
    structure = np.frombuffer(_JSON_STRING.sub(b'""', raw), np.uint8)
    step = (np.isin(structure, (ord("["), ord("{"))).astype(np.int64)
            - np.isin(structure, (ord("]"), ord("}"))))
    if len(step) and np.cumsum(step).max() > max_depth:
        raise JsonError(f"the JSON body nests deeper than {max_depth} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise JsonError("the body is not valid JSON") from None


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class HostPolicy:
    """Which names a request's `Host` (and a write's `Origin`) may carry."""

    def __init__(self, bound_host: str, allowed: tuple[str, ...] = ()):
        self.any = "*" in allowed
        names = {*LOOPBACK_NAMES, *allowed}
        if bound_host not in WILDCARD_ADDRESSES:
            names.add(bound_host)
        else:  # listening everywhere: this machine's own names are meant too
            names.add(socket.gethostname())
            names.add(socket.getfqdn())
        self.names = {name.lower().strip("[]") for name in names if name}

    def allows(self, host: str) -> bool:
        """`host` as sent in a `Host` header or an origin's netloc (with or without a port)."""
        return self.any or _hostname(host) in self.names

    def cross_site(self, origin: str | None, fetch_site: str | None, host: str) -> bool:
        """Whether a write comes from a page of another site."""
        if fetch_site is not None and fetch_site.lower() not in ("same-origin", "none"):
            return True
        if origin is None:
            return False  # not sent by a browser's cross-site write: those always carry it
        parts = urlsplit(origin)
        return origin == "null" or parts.netloc.lower() != host.lower()


def _hostname(netloc: str) -> str:
    netloc = netloc.lower()
    if netloc.startswith("["):
        return netloc[1:netloc.find("]")] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def safe_next(target: str | None) -> str:
    """A path on this server to go to after sign-in: anything else (another site, `//host`,
    control characters, backslashes) becomes '/'."""
    return target if target is not None and SAFE_NEXT.fullmatch(target) else "/"


class Sessions:
    """Signed sign-in cookies: `expiry.nonce.mac`, the mac an HMAC of the rest under a key
    derived from the token. Stateless (a server restart keeps people signed in); changing the
    token signs everyone out."""

    def __init__(self, token: str, lifetime_seconds: float = 7 * 24 * 3600):
        self._key = hashlib.sha256(b"muzero-session:" + token.encode()).digest()
        self.lifetime = lifetime_seconds

    def _mac(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def new(self) -> str:
        payload = f"{int(time.time() + self.lifetime)}.{secrets.token_hex(16)}"
        return f"{payload}.{self._mac(payload)}"

    def valid(self, cookie: str) -> bool:
        payload, _, mac = cookie.rpartition(".")
        expiry = payload.split(".", 1)[0]
        return (bool(payload) and hmac.compare_digest(mac, self._mac(payload))
                and expiry.isdigit() and int(expiry) > time.time())


class AttemptLimiter:
    """At most `attempts` failed sign-ins per address in `window` seconds; the table of
    addresses is bounded, forgetting the least recently failed."""

    def __init__(self, attempts: int = 5, window: float = 60.0, max_addresses: int = 10_000):
        self.attempts = attempts
        self.window = window
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again; 0 if it may now."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(address)
            if failures is None:
                return 0.0
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if len(failures) < self.attempts:
                return 0.0
            return failures[0] + self.window - now

    def failed(self, address: str) -> None:
        with self._lock:
            failures = self._failures.pop(address, None) or deque()
            failures.append(time.monotonic())
            self._failures[address] = failures
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
