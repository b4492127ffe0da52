"""The bot's HTTP server: a small router on the standard library's ThreadingHTTPServer.

Routes are plain functions (Request -> Response) registered on a ``Router``, so later work adds
Slack events and /metrics beside ``POST /alertmanager``, ``/healthz`` and ``/readyz`` without
touching the plumbing. A handler reads the body only when it wants it (after auth), within the
route's size limit; an ``HTTPError`` raised anywhere becomes a JSON error answer. Alertmanager
gets its 200 only after the store has committed, so a crash before that makes it re-send.
"""

from __future__ import annotations

import hmac
import io
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr

from bot import alerts, logs, metrics
from bot.config import Settings
from bot.store import Store
from tools import redact

MAX_BODY = 1024 * 1024
"""Largest request body a route accepts unless it says otherwise (413 above)."""
_DRAIN_MAX = 8 * MAX_BODY
"""An unread body up to this size is read and dropped so the client sees our answer."""
_JSON = "application/json"


class HTTPError(Exception):
    """Raised by a handler (or the plumbing) to answer ``{"error": message, ...}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self) -> Response:
        return json_response({"error": self.message, **self.extra}, self.status, self.headers)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data).encode()
    return Response(status, body, {"Content-Type": _JSON, **(headers or {})})


class Request:
    """One request; ``body()`` reads it on demand, once, within the route's limit."""

    def __init__(
        self,
        *,
        method: str,
        target: str,
        headers: dict[str, str],
        stream: io.BufferedIOBase,
        client: str = "",
        max_body: int = MAX_BODY,
    ) -> None:
        parts = urlsplit(target)
        self.method = method
        self.path = parts.path
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.client = client
        self.max_body = max_body
        self._stream = stream
        self._body: bytes | None = None
        self._broken = False

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``application/json``)."""
        return self.header("content-type").split(";", 1)[0].strip().lower()

    @property
    def declared_length(self) -> int | None:
        """Content-Length; None when chunked (never trusted over Transfer-Encoding) or bad."""
        if self.header("transfer-encoding"):
            return None
        raw = self.header("content-length")
        if not raw:
            return 0
        return int(raw) if raw.isdigit() else None

    @property
    def unread(self) -> int | None:
        """Bytes of body still on the wire (None: unknown, so the connection must close)."""
        if self._broken:
            return None
        return 0 if self._body is not None else self.declared_length

    def body(self) -> bytes:
        if self._body is None:
            length = self.declared_length
            if length is None:
                raise HTTPError(411, "a valid Content-Length header is required")
            if length > self.max_body:
                raise HTTPError(413, f"the body is larger than {self.max_body} bytes")
            try:
                self._body = self._stream.read(length) if length else b""
            except OSError as e:  # the socket timed out or broke mid-body
                self._broken = True
                raise HTTPError(408, "the body did not arrive in time") from e
        return self._body


Handler = Callable[[Request], Response]
Hook = Callable[[], None]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    max_body: int = MAX_BODY


class Router:
    """Exact method + path routes; HEAD is answered by the GET route without a body."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Route] = {}

    def add(self, method: str, path: str, handler: Handler, *, max_body: int = MAX_BODY) -> None:
        key = (method.upper(), path)
        if key in self._routes:
            raise ValueError(f"route {method} {path} is already registered")
        self._routes[key] = Route(key[0], path, handler, max_body)

    def find(self, method: str, path: str) -> Route:
        """The route, or HTTPError 404 (unknown path) / 405 (known path, other method)."""
        method = "GET" if method == "HEAD" else method
        route = self._routes.get((method, path))
        if route is not None:
            return route
        allowed = sorted(m for m, p in self._routes if p == path)
        if allowed:
            raise HTTPError(
                405, f"{path} accepts {', '.join(allowed)}", headers={"Allow": ", ".join(allowed)}
            )
        raise HTTPError(404, f"no route for {path}")


class BotServer:
    """A ThreadingHTTPServer bound at construction (port 0 picks a free one), served on a thread."""

    def __init__(
        self, router: Router, *, host: str, port: int, on_thread_exit: Hook | None = None
    ) -> None:
        self.router = router
        self._httpd = _HTTPServer((host, port), router, on_thread_exit)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        host = "127.0.0.1" if host in ("0.0.0.0", "") else str(host)  # noqa: S104
        return f"http://{host}:{port}"

    def start(self) -> BotServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="opsbot-http",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> BotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    """The listen backlog: the stdlib's 5 resets connections when Slack sends a burst."""

    def __init__(self, address: tuple[str, int], router: Router, hook: Hook | None) -> None:
        self.router = router
        self.on_thread_exit = hook
        super().__init__(address, _Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """One thread per connection; it releases its per-thread resources (the store's
        SQLite connection) when the connection ends."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            if self.on_thread_exit is not None:
                self.on_thread_exit()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive or a slow sender frees its thread
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: each request is logged once, with structlog, in ``_dispatch``."""

    def _dispatch(self) -> None:
        started = time.perf_counter()
        request = Request(
            method=self.command,
            target=self.path,
            headers=dict(self.headers.items()),
            stream=self.rfile,
            client=self.client_address[0],
        )
        try:
            route = self.server.router.find(request.method, request.path)
            request.max_body = route.max_body
            response = route.handler(request)
        except HTTPError as e:
            response = e.response()
        except Exception:
            logs.get("opsbot.server").exception(
                "http.handler_failed", method=request.method, path=request.path
            )
            response = json_response({"error": "internal error"}, 500)
        self._drop_unread(request, response)
        self._send(response)
        logs.get("opsbot.server").debug(
            "http.request",
            method=request.method,
            path=request.path,
            status=response.status,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _drop_unread(self, request: Request, response: Response) -> None:
        """Read and drop a body the handler did not want, so the answer reaches the client and
        keep-alive stays in step; close the connection when it is too large or of unknown size."""
        unread = request.unread
        if unread is None or unread > _DRAIN_MAX:
            self.close_connection = True
            response.headers["Connection"] = "close"
            return
        try:
            while unread > 0 and (chunk := self.rfile.read(min(unread, 65536))):
                unread -= len(chunk)
        except OSError:
            self.close_connection = True

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


# -- the bot's routes ------------------------------------------------------------------------
def alertmanager_handler(*, settings: Settings, store: Store) -> Handler:
    """POST /alertmanager: bearer token, JSON, payload validated, stored, then 200."""

    def handle(request: Request) -> Response:
        log = logs.get("opsbot.server", path=request.path, client=request.client)
        _check_bearer(request, settings.webhook_token, log=log)
        if request.content_type != _JSON and not request.content_type.endswith("+json"):
            raise HTTPError(415, f"Content-Type must be {_JSON}", headers={"Accept": _JSON})
        body = request.body()
        try:
            notification = alerts.parse(body)
        except alerts.InvalidPayload as e:
            log.warning(
                "alertmanager.invalid_payload",
                problems=e.problems,
                body_bytes=len(body),
                body=redact.redact(body[:300].decode("utf-8", "replace")),
            )
            raise HTTPError(
                400, "invalid Alertmanager payload", extra={"problems": e.problems}
            ) from e
        try:
            result = alerts.intake(notification, store=store, settings=settings)
        except sqlite3.Error as e:
            log.exception("alertmanager.store_failed", group_key=notification.group_key)
            # 5xx: Alertmanager retries, and intake is idempotent, so nothing is lost.
            raise HTTPError(
                503, "the store is unavailable; retry", headers={"Retry-After": "5"}
            ) from e
        return json_response(
            {"received": result.received, "new": result.new, "duplicates": result.duplicates}
        )

    return handle


def _check_bearer(request: Request, token: SecretStr | None, *, log: Any) -> None:
    """401 unless ``Authorization: Bearer <token>`` matches; with no token set, always 401
    (fail closed: an open webhook would let anyone start diagnoses)."""
    challenge = {"WWW-Authenticate": 'Bearer realm="opsbot"'}
    expected = token.get_secret_value() if token is not None else ""
    if not expected:
        log.warning("alertmanager.unauthorized", reason="webhook_token is not configured")
        raise HTTPError(
            401, "the webhook token is not configured (OPSBOT_WEBHOOK_TOKEN)", headers=challenge
        )
    scheme, _, presented = request.header("authorization").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    ):
        reason = "missing" if not request.header("authorization") else "wrong"
        log.warning("alertmanager.unauthorized", reason=f"{reason} bearer token")
        raise HTTPError(401, "missing or wrong bearer token", headers=challenge)


def healthz(request: Request) -> Response:
    """The process serves HTTP: nothing more is checked (a liveness probe)."""
    return json_response({"status": "ok"})


def readyz_handler(*, store: Store) -> Handler:
    """200 when the store opens and answers a query on this thread's connection; 503 otherwise."""

    def handle(request: Request) -> Response:
        try:
            store.schema_version()
        except Exception as e:  # any failure means "do not send us traffic", never a 500
            logs.get("opsbot.server").warning("readyz.store_unavailable", error=str(e))
            return json_response(
                {"status": "unavailable", "store": f"{type(e).__name__}: {e}"}, 503
            )
        return json_response({"status": "ready", "store": "ok"})

    return handle


def routes(*, settings: Settings, store: Store, slack_events: Handler | None = None) -> Router:
    """The bot's routes; ``slack_events`` (``bot.slack.app.http_handler``) serves
    ``POST /slack/events`` when Slack delivers over HTTP rather than Socket Mode."""
    router = Router()
    router.add("POST", "/alertmanager", alertmanager_handler(settings=settings, store=store))
    if slack_events is not None:
        router.add("POST", "/slack/events", slack_events)
    router.add("GET", "/healthz", healthz)
    router.add("GET", "/readyz", readyz_handler(store=store))
    router.add("GET", "/metrics", metrics_handler)
    return router


def metrics_handler(request: Request) -> Response:
    """The bot's own metrics (``bot.metrics``) for Prometheus to scrape."""
    body, content_type = metrics.exposition()
    return Response(200, body, {"Content-Type": content_type})


def serve(
    settings: Settings,
    store: Store,
    *,
    host: str | None = None,
    port: int | None = None,
    router: Router | None = None,
) -> BotServer:
    """Bind (settings' host and port unless given; port 0 picks a free one) and start serving."""
    if settings.webhook_token is None:
        logs.get("opsbot.server").warning(
            "server.no_webhook_token", hint="POST /alertmanager answers 401 until it is set"
        )
    server = BotServer(
        router or routes(settings=settings, store=store),
        host=settings.http_host if host is None else host,
        port=settings.http_port if port is None else port,
        on_thread_exit=store.close,
    )
    return server.start()
