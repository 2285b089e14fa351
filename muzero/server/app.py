"""The Flask application: the JSON/npz API under /api/v1/, the dashboard at /, the play page at
/play, and in front of all of them the checks of `guards` (Host, cross-site writes) and the
optional token.

Every caller mistake is a 4xx answer `{"error": "..."}` naming the problem, and nothing of a
refused request is stored; a 5xx is the server's own fault, and clients retry it. Arrays
travel as `.npz` bytes (never pickle) with `Content-Type: application/octet-stream`; small
messages as `application/json`. Neither is a type a web page may send to another site without
asking first, which is one of the two walls against cross-site writes (Origin is the other).
"""

from __future__ import annotations

import hmac
import socket
import sys
import traceback
from pathlib import Path
from urllib.parse import quote

from flask import Flask, Response, jsonify, redirect, request, send_file
from werkzeug.exceptions import HTTPException

from muzero.server import wire
from muzero.server.errors import MAX_ID, NotFound, StoreError
from muzero.server.guards import (
    AttemptLimiter,
    HostPolicy,
    JsonError,
    Sessions,
    parse_json,
    safe_next,
)
from muzero.server.playroom import PlayError, PlayRoom
from muzero.server.storage import Store
from muzero.server.versions import WeightVersions

API = "/api/v1"
SESSION_COOKIE = "muzero_session"
STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_BODY = 64 * 1024 * 1024
MAX_JSON_BYTES = 128 * 1024
MAX_JSON_DEPTH = 32
NPZ = "application/octet-stream"
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _json_body() -> dict:
    if request.mimetype != "application/json":
        raise ApiError(415, f"send the body with Content-Type: application/json (got "
                            f"{request.mimetype or 'none'})")
    try:
        data = parse_json(request.get_data(cache=False), MAX_JSON_BYTES, MAX_JSON_DEPTH)
    except JsonError as error:
        raise ApiError(400, f"{error}; the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def _npz_body() -> bytes:
    if request.mimetype != NPZ:
        raise ApiError(415, f"send the .npz body with Content-Type: {NPZ} (got "
                            f"{request.mimetype or 'none'})")
    return request.get_data(cache=False)


def _int_argument(name: str, default: int | None = None, low: int = 0,
                  high: int = MAX_ID) -> int:
    text = request.args.get(name)
    if text is None:
        if default is None:
            raise ApiError(400, f"missing query parameter {name!r}")
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r} must be an integer, got {text!r}") \
            from None
    if value < low:
        raise ApiError(400, f"query parameter {name!r} must be >= {low}, got {value}")
    if value > high:
        raise ApiError(400, f"query parameter {name!r} must be <= {high}, got "
                            f"{str(value)[:40]}")
    return value


def _npz_response(data: bytes) -> Response:
    return Response(data, mimetype="application/octet-stream")


def _client_id() -> str:
    given = request.headers.get("X-Client-Id", "")[:64]
    return given if given.isprintable() and given else (request.remote_addr or "anonymous")


def create_app(store: Store, token: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY,
               hosts: HostPolicy | None = None) -> Flask:
    """The app over `store`. `hosts` names what a request's Host may be (default: loopback)."""
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    hosts = hosts or HostPolicy("127.0.0.1")
    sessions = Sessions(token) if token is not None else None
    sign_in_attempts = AttemptLimiter()
    playroom = PlayRoom(store.plugin, store.config, store.latest_weights)

    # ----- errors and the token -----

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return jsonify(error=str(error)), error.status

    @app.errorhandler(StoreError)
    @app.errorhandler(PlayError)
    def refused(error: ValueError):
        return jsonify(error=str(error)), 400

    @app.errorhandler(LookupError)  # NotFound, unknown browser games
    def not_found(error: LookupError):
        return jsonify(error=str(error).strip("'\"")), 404

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        messages = {413: f"request body too large (limit {max_body_bytes} bytes)"}
        return jsonify(error=messages.get(error.code, error.description)), error.code

    @app.errorhandler(Exception)
    def server_fault(error: Exception):
        """A fault of the server's own (clients retry a 5xx): logged with its stack."""
        traceback.print_exception(error, file=sys.stderr)
        return jsonify(error=f"internal server error ({type(error).__name__}); see the "
                             f"server's log"), 500

    def _authorised() -> bool:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if given:
            return hmac.compare_digest(given.encode(), token.encode())
        return sessions.valid(request.cookies.get(SESSION_COOKIE, ""))

    @app.before_request
    def guard():
        if not hosts.allows(request.host):
            return jsonify(error=f"Host {request.host[:100]!r} is not a name of this server; "
                                 f"start it with --allow-host NAME to serve another name"), 400
        if request.method in UNSAFE_METHODS and hosts.cross_site(
                request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site"),
                request.host):
            return jsonify(error="a write from a page of another site is refused "
                                 "(Origin / Sec-Fetch-Site)"), 403
        if token is None or request.path == "/login" or _authorised():
            return None
        if request.path.startswith("/api/"):
            return jsonify(error="missing or wrong token (send 'Authorization: Bearer TOKEN')"), \
                401
        return redirect(f"/login?next={quote(safe_next(request.path))}")

    @app.route("/login", methods=["GET", "POST"])
    def login():
        page = (STATIC / "login.html").read_text()
        if request.method == "GET":
            return page
        address = request.remote_addr or "unknown"
        wait = sign_in_attempts.retry_after(address)
        if wait > 0:
            refusal = f"<p class=error>too many wrong tokens; try again in {wait:.0f} s</p>"
            return page.replace("<!--error-->", refusal), 429, {"Retry-After": f"{wait:.0f}"}
        given = request.form.get("token", "")
        if token is None or not hmac.compare_digest(given.encode(), token.encode()):
            sign_in_attempts.failed(address)
            return page.replace("<!--error-->", "<p class=error>wrong token</p>"), 401
        response = redirect(safe_next(request.args.get("next")))
        response.set_cookie(SESSION_COOKIE, sessions.new(), max_age=int(sessions.lifetime),
                            httponly=True, samesite="Strict")
        return response

    # ----- pages -----

    @app.get("/")
    def dashboard():
        return send_file(STATIC / "dashboard.html")

    @app.get("/play")
    def play_page():
        return send_file(STATIC / "play.html")

    # ----- run state -----

    @app.get(f"{API}/stats")
    def stats():
        return jsonify(store.stats())

    @app.get(f"{API}/config")
    def config():
        return Response(store.config.to_json(), mimetype="application/json")

    @app.get(f"{API}/log")
    def training_log():
        since = _int_argument("since", default=0)
        limit = _int_argument("limit", default=1000, low=1, high=10_000)
        entries, more = store.training_log(since, limit)
        return jsonify(entries=entries, more=more, ingest=store.ingest_series())

    @app.post(f"{API}/log")
    def append_log():
        body = _json_body()
        store.append_log(body.get("kind"), body.get("step"), body.get("data"))
        return jsonify(ok=True), 201

    # ----- weights -----

    def _weights_response(version):
        etag = f"v{version.version}"
        if etag in request.if_none_match:
            response = Response(status=304)
        else:
            response = _send_version_file(version.version, version.path, "application/x-hdf5")
        response.headers["X-Weights-Version"] = str(version.version)
        response.headers["X-Training-Step"] = str(version.step)
        response.set_etag(etag)
        return response

    def _send_version_file(version: int, path, mimetype: str):
        try:  # opened here: pruning after this leaves the open file readable
            return send_file(path, mimetype=mimetype, etag=False, conditional=False, max_age=0)
        except FileNotFoundError:  # pruned since it was looked up
            raise NotFound(WeightVersions.not_kept(version)) from None

    def _stored_weights_response(version):
        if version is None:
            raise NotFound("no weights stored yet")
        return _weights_response(version)

    @app.get(f"{API}/weights/latest")
    def latest_weights():
        return _stored_weights_response(store.latest_weights())

    @app.get(f"{API}/weights/agent")
    def agent_weights():
        return _stored_weights_response(store.agent_weights())

    @app.get(f"{API}/weights/<int:version>")
    def weights_version(version: int):
        return _weights_response(store.weights_version(version))

    @app.get(f"{API}/optimizer/<int:version>")
    def optimizer_state(version: int):
        found = store.weights_version(version)
        if found.optimizer_path is None:
            raise NotFound(f"weights version {version} has no optimizer state")
        return _send_version_file(version, found.optimizer_path, "application/octet-stream")

    @app.post(f"{API}/weights")
    def upload_weights():
        weights = request.files.get("weights")
        if weights is None:
            raise ApiError(400, "send the weights as the multipart file 'weights'")
        try:
            step = int(request.form.get("step", "")[:40])
        except ValueError:
            raise ApiError(400, "send the training step as the form field 'step' (an integer)")\
                from None
        optimizer = request.files.get("optimizer")
        version = store.add_weights(weights.read(), optimizer.read() if optimizer else None,
                                    step, client=_client_id())
        return jsonify(version=version.version, step=version.step), 201

    # ----- games, batches, priorities -----

    @app.post(f"{API}/games")
    def upload_games():
        upload_id = request.headers.get("X-Upload-Id")
        if upload_id is not None and not (0 < len(upload_id) <= 64 and upload_id.isprintable()):
            raise ApiError(400, "X-Upload-Id must be 1 to 64 printable characters")
        ack = store.add_games(_npz_body(), upload_id, _client_id())
        return jsonify(ack), 201

    @app.get(f"{API}/batch")
    def batch():
        size = _int_argument("size", default=store.config.batch_size, low=1, high=MAX_ID)
        return _npz_response(wire.encode_batch(store.sample(size, _client_id())))

    @app.post(f"{API}/priorities")
    def priorities():
        try:
            indices, errors = wire.decode_priorities(_npz_body(), store.priority_limits)
        except wire.WireError as error:
            raise ApiError(400, str(error)) from None
        return jsonify(updated=store.update_priorities(indices, errors))

    @app.get(f"{API}/reanalyse")
    def reanalyse():
        count = _int_argument("positions", low=1, high=MAX_ID)
        return _npz_response(wire.encode_positions(store.positions_to_reanalyse(count)))

    @app.post(f"{API}/reanalysed")
    def reanalysed():
        try:
            targets = wire.decode_targets(_npz_body(), store.games.target_limits)
        except wire.WireError as error:
            raise ApiError(400, str(error)) from None
        return jsonify(refreshed=store.refresh_targets(*targets))

    # ----- browser games -----

    @app.post(f"{API}/play")
    def new_game():
        return jsonify(playroom.new_game(_json_body().get("seat", 0))), 201

    @app.post(f"{API}/play/<game_id>")
    def play_move(game_id: str):
        return jsonify(playroom.move(game_id, _json_body().get("action")))

    return app


def check_can_listen(host: str, port: int) -> None:
    """Raise `ValueError` naming the address if this server could not listen there (the port
    taken, the name unknown), before the data folder is opened: waitress would find out only
    once the store was built, with a traceback."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port,
                                                                type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as error:
        raise ValueError(f"--host {host!r}: not an address this machine can resolve "
                         f"({error})") from None
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress binds
        try:
            probe.bind(address)
        except OSError as error:
            raise ValueError(f"cannot listen on {host}:{port} ({error.strerror}): another "
                             f"server may hold the port; give another --port") from None


def serve(store: Store, host: str, port: int, token: str | None = None, threads: int = 8,
          allowed_hosts: tuple[str, ...] = (), max_body_bytes: int = DEFAULT_MAX_BODY) -> None:
    """Serve the app with waitress (a production WSGI server) until interrupted. Waitress
    reads a whole body before the app sees the request (token check included), so its own
    limit is the app's: a larger body is refused from its Content-Length, unread."""
    from waitress import serve as waitress_serve

    # with a token, any name: a page that rebinds its own name to this server cannot send the
    # token (nor the session cookie, which belongs to the server's own origin)
    names = allowed_hosts + (("*",) if token is not None else ())
    app = create_app(store, token, max_body_bytes, HostPolicy(host, names))
    waitress_serve(app, host=host, port=port, threads=threads, ident="muzero",
                   clear_untrusted_proxy_headers=True, max_request_body_size=max_body_bytes + 1)

