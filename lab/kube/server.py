"""The fake Kubernetes API server: a real HTTP server on a thread, over an ObjectStore.

kubectl and the official Python client talk to it through a kubeconfig it writes. It records
every request (for assertions) and can inject faults::

    with KubeApiServer(store) as server:
        server.write_kubeconfig(tmp_path / "kubeconfig")
        server.fault = Fault(status=503, paths=("/deployments",), times=2)   # next 2 fail
        server.fault = Fault(status=None, delay=2.0)                          # every call slow
        ...
        assert server.calls(method="PATCH", path_contains="/deployments/llama")
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from lab.kube import errors
from lab.kube.api import Api, Request, Response, error_response
from lab.kube.store import ObjectStore
from lab.kube.watch import WatchHub


@dataclass
class Fault:
    """Makes matching requests slow (``delay`` seconds) and/or fail (``status``, as a Status).

    ``status=None`` only delays. ``paths`` are substrings of the URL path and ``methods`` HTTP
    methods; empty matches all. ``times`` is how many requests it hits before clearing itself
    (None: until replaced). ``retry_after`` adds a Retry-After header (for 429/503).
    """

    status: int | None = 503
    delay: float = 0.0
    paths: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    times: int | None = None
    retry_after: int | None = None
    message: str = "injected fault"

    def matches(self, method: str, path: str) -> bool:
        if self.methods and method.upper() not in {m.upper() for m in self.methods}:
            return False
        return not self.paths or any(p in path for p in self.paths)


@dataclass
class RecordedRequest:
    """One request as the server saw it, for assertions in tests."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    """Parsed JSON when the body is JSON, else text; None when empty."""
    accept: str = ""
    status: int | None = None
    """The status code answered (None while in flight)."""


class KubeApiServer:
    """Serves ``store`` as a Kubernetes API on http://HOST:PORT (port 0 picks a free one)."""

    def __init__(self, store: ObjectStore, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.fault: Fault | None = None
        """Set (or replace, or clear with None) at any time; applies to requests that follow."""
        self.requests: list[RecordedRequest] = []
        """Every request in arrival order; ``calls()`` filters it."""
        self._lock = threading.Lock()
        self._hub = WatchHub()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._subscribed = False

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> KubeApiServer:
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self.host, self.port), _Handler, owner=self)
        self.port = httpd.server_address[1]
        self._hub.stopping.clear()
        self._api = Api(self.store, hub=self._hub, address=f"{self.host}:{self.port}")
        if not self._subscribed:
            self.store.subscribe(self._hub.listener)
            self._subscribed = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
            name=f"kube-api-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._hub.stopping.set()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- clients ---------------------------------------------------------------------------
    def write_kubeconfig(
        self,
        path: str | Path,
        *,
        context: str = "lab",
        cluster_name: str = "lab",
        namespace: str = "inference",
    ) -> Path:
        """A kubeconfig for kubectl and the ``kubernetes`` client pointing at this server."""
        user = f"{cluster_name}-user"
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster_name, "cluster": {"server": self.url}}],
            "users": [{"name": user, "user": {"token": "lab-token"}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": cluster_name, "user": user, "namespace": namespace},
                }
            ],
            "current-context": context,
            "preferences": {},
        }
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(yaml.safe_dump(doc, sort_keys=False))
        return out

    # -- assertions ------------------------------------------------------------------------
    def calls(
        self, method: str | None = None, path_contains: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests, filtered by HTTP method and a substring of the path."""
        with self._lock:
            recorded = list(self.requests)
        return [
            r
            for r in recorded
            if (method is None or r.method == method.upper())
            and (path_contains is None or path_contains in r.path)
        ]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- request handling (called from handler threads) ------------------------------------
    def _dispatch(self, req: Request) -> Response:
        record = RecordedRequest(
            method=req.method,
            path=req.path,
            query=dict(req.query),
            content_type=req.headers.get("content-type", ""),
            body=_decode(req.body),
            accept=req.headers.get("accept", ""),
        )
        with self._lock:
            self.requests.append(record)
        response = self._faulted(req) or self._api.handle(req)
        record.status = response.status
        return response

    def _faulted(self, req: Request) -> Response | None:
        with self._lock:
            fault = self.fault
            if fault is None or not fault.matches(req.method, req.path):
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.fault = None
        if fault.delay:
            self._hub.stopping.wait(fault.delay)
        if fault.status is None:
            return None
        return error_response(
            errors.from_code(fault.status, fault.message, retry_after=fault.retry_after)
        )


def _decode(body: bytes) -> Any:
    if not body:
        return None
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class _HTTPServer(ThreadingHTTPServer):
    """Tracks open connections, so stopping also ends keep-alive handlers."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], *, owner: KubeApiServer
    ) -> None:
        super().__init__(address, handler)
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms delayed-ACK stall
    server_version = "lab-kube-apiserver"
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the server records requests instead of printing them."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        owner = self.server.owner
        url = urlsplit(self.path)
        req = Request(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        try:
            response = owner._dispatch(req)
        except Exception as e:  # a bug in the fake must still answer like a server
            response = error_response(errors.from_code(500, f"lab api server error: {e!r}"))
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.stream is None:
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in response.stream:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
