"""The shape every lab fake shares: a real HTTP server on a thread, on 127.0.0.1 and a free port.

A fake is one handler function (Request -> Response) wrapped in a ``LabServer``, which records
every request for tests to assert on and can inject faults (a status, a delay) for the fault
suites. Streaming answers (server-sent events) are an iterator of byte chunks.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterable[bytes] | None = None
    """When set, sent with chunked transfer encoding instead of ``body``."""


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def text_response(text: str, status: int = 200, content_type: str = "text/plain") -> Response:
    return Response(status=status, body=text.encode(), headers={"Content-Type": content_type})


@dataclass
class Fault:
    """Misbehaviour to inject: a delay before answering and/or a fixed error status."""

    status: int | None = None
    delay: float = 0.0
    path: str | None = None
    """A regex; only matching paths misbehave (all when None)."""
    body: bytes = b'{"error": "injected fault"}'

    def applies(self, path: str) -> bool:
        return self.path is None or re.search(self.path, path) is not None


Handler = Callable[[Request], Response]


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (a timeout, a cancelled stream) is normal here."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            return
        super().handle_error(request, client_address)


class LabServer:
    """Serve ``handler`` on 127.0.0.1 (port 0 picks a free one) on a daemon thread."""

    def __init__(self, handler: Handler, *, name: str, host: str = "127.0.0.1", port: int = 0):
        self.name = name
        self.handler = handler
        self.requests: list[Request] = []
        self.fault: Fault | None = None
        self._lock = threading.Lock()
        self._httpd = _QuietServer((host, port), self._request_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LabServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},  # a quick stop() keeps the suites fast
                name=f"lab-{self.name}",
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

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def calls(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """Recorded requests, filtered by method and by a regex on the path."""
        with self._lock:
            recorded = list(self.requests)
        return [
            r
            for r in recorded
            if (method is None or r.method == method) and (path is None or re.search(path, r.path))
        ]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _request_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall on keep-alive

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests read ``requests`` instead."""

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                server._record(request)
                fault = server.fault
                if fault is not None and fault.applies(request.path):
                    if fault.delay:
                        time.sleep(fault.delay)
                    if fault.status is not None:
                        self._send(Response(status=fault.status, body=fault.body))
                        return
                try:
                    response = server.handler(request)
                except Exception as e:  # a bug in a fake must show up as a 500, not a hang
                    response = json_response({"error": f"{type(e).__name__}: {e}"}, 500)
                self._send(response)

            def _send(self, response: Response) -> None:
                self.send_response(response.status)
                for key, value in response.headers.items():
                    self.send_header(key, value)
                if response.stream is None:
                    self.send_header("Content-Length", str(len(response.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(response.body)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in response.stream:
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        return _Handler
