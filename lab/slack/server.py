"""A Slack Web API fake on a ``LabServer``: point slack-sdk's ``WebClient`` at ``server.api_url``.

What it does like Slack: methods at ``/api/<method>`` taking form-encoded, multipart or JSON
bodies (slack-sdk sends JSON for chat.* and views.*, forms for the rest) and query parameters;
the token from ``Authorization: Bearer …`` or a ``token`` argument (``not_authed`` when missing,
``invalid_auth`` when wrong); HTTP 200 with ``{"ok": false, "error": …}`` for method errors,
404 ``unknown_method``; 429 with ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``.

Lab-only routes (nothing like them in Slack): ``POST /_lab/upload/<file_id>`` is the upload URL
``files.getUploadURLExternal`` hands out; ``POST /_lab/response/<id>`` is a ``response_url``;
``GET /_lab/calls[?method=…]``, ``GET /_lab/messages?channel=…`` and ``GET /_lab/responses``
show what happened, as JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.message import Message as MimeMessage
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

from lab import httpserver
from lab.slack import methods, ratelimit, state
from lab.slack import workspace as ws

DEFAULT_TOKEN = "xoxb-lab-0000-opsbot"  # noqa: S105 -- a fake token for a fake Slack

JSON_ARGS = ("blocks", "attachments", "files", "view", "metadata")
"""Arguments that form-encoded calls carry as JSON strings."""


@dataclass(frozen=True)
class Call:
    """One Web API call as the fake answered it."""

    method: str
    args: dict[str, Any]
    at: float
    ok: bool
    error: str | None = None
    status: int = 200


class SlackServer:
    """The fake Slack. Defaults: see ``Workspace`` (channels, users, @sre-approvers) and
    ``RateLimits`` (chat.postMessage: burst 5 then 1 per second per channel; no tier limits).

    ``with SlackServer() as slack: WebClient(token=slack.token, base_url=slack.api_url)``.
    """

    def __init__(
        self,
        *,
        workspace: ws.Workspace | None = None,
        token: str = DEFAULT_TOKEN,
        limits: ratelimit.RateLimits | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.workspace = workspace or ws.Workspace()
        self.token = token
        self.limits = limits or ratelimit.RateLimits()
        self.state = state.SlackState(self.workspace, clock=clock)
        self.http = httpserver.LabServer(self._handle, name="slack")
        self._calls: list[Call] = []
        self._buckets = ratelimit.Buckets()

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.http.url

    @property
    def api_url(self) -> str:
        """The ``base_url`` for slack-sdk (it must end with a slash)."""
        return f"{self.http.url}/api/"

    def start(self) -> SlackServer:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    def __enter__(self) -> SlackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests -------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[Call]:
        """Recorded Web API calls, oldest first, optionally of one method."""
        with self.state.lock:
            return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """A channel's messages as they are now (after updates and deletes), oldest first;
        with ``thread_ts``, that thread only (parent first)."""
        with self.state.lock:
            channel_id = self.state.channel(channel).id
            if thread_ts:
                return self.state.thread(channel_id, thread_ts)
            return self.state.messages(channel_id)

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        """One message as it is now; LookupError when there is none (deleted, never posted)."""
        found = next((m for m in self.messages(channel) if m["ts"] == ts), None)
        if found is None:
            raise LookupError(f"no message {ts} in {channel}")
        return found

    def ephemeral(self, user: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral posts (chat.postEphemeral and ephemeral response_url answers)."""
        with self.state.lock:
            return [dict(e) for e in self.state.ephemeral if user is None or e["user"] == user]

    def uploads(self) -> list[state.Upload]:
        with self.state.lock:
            return list(self.state.uploads.values())

    def responses(self) -> list[state.ResponsePost]:
        """Posts the bot made to response_urls this fake issued."""
        with self.state.lock:
            return list(self.state.responses)

    def add_message(
        self, channel: str, text: str, *, user: str, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """A message a person posts (so the bot can be pointed at it); returns it, with ts."""
        with self.state.lock:
            found = self.workspace.user(user)
            if found is None:
                raise ValueError(f"unknown user {user!r}")
            target = self.state.channel(channel)
            message = {"user": found.id, "team": self.workspace.team_id, "text": text}
            return self.state.post(target, message, thread_ts)

    def response_url(
        self, channel: str, message_ts: str | None = None, user: str | None = None
    ) -> str:
        """A response_url served here; posts to it act on ``channel`` and ``message_ts``."""
        with self.state.lock:
            target = self.state.response_target(channel, message_ts, user)
        return f"{self.url}/_lab/response/{target}"

    def reset_limits(self) -> None:
        with self.state.lock:
            self._buckets.reset()

    # -- HTTP --------------------------------------------------------------------------------
    def _handle(self, request: httpserver.Request) -> httpserver.Response:
        routes: list[tuple[str, str, Callable[[str, httpserver.Request], httpserver.Response]]] = [
            ("", "/api/", self._api),
            ("POST", "/_lab/upload/", self._upload),
            ("POST", "/_lab/response/", self._response_url),
            ("GET", "/_lab/", self._lab_view),
        ]
        for verb, prefix, route in routes:
            if request.path.startswith(prefix) and verb in ("", request.method):
                return route(request.path.removeprefix(prefix), request)
        return httpserver.json_response({"ok": False, "error": "not_found"}, 404)

    def _lab_view(self, what: str, request: httpserver.Request) -> httpserver.Response:
        """``/_lab/calls``, ``/_lab/messages?channel=…``, ``/_lab/responses`` as JSON."""
        if what == "calls":
            return httpserver.json_response([asdict(c) for c in self.calls(request.arg("method"))])
        if what == "responses":
            return httpserver.json_response([asdict(r) for r in self.responses()])
        if what == "messages":
            try:
                return httpserver.json_response(self.messages(request.arg("channel") or ""))
            except state.SlackError as e:
                return httpserver.json_response({"ok": False, "error": e.code}, 404)
        return httpserver.json_response({"ok": False, "error": "not_found"}, 404)

    def _api(self, name: str, request: httpserver.Request) -> httpserver.Response:
        try:
            args = parse_args(request)
        except ValueError:
            return httpserver.json_response({"ok": False, "error": "invalid_form_data"})
        token = args.pop("token", None)
        auth = request.header("authorization")
        if auth.lower().startswith("bearer "):
            token = auth[len("bearer ") :].strip()
        with self.state.lock:
            status, body, headers = self._dispatch(name, args, token)
            self._calls.append(
                Call(
                    method=name,
                    args=args,
                    at=self.state.clock(),
                    ok=bool(body.get("ok")),
                    error=body.get("error"),
                    status=status,
                )
            )
        return httpserver.json_response(body, status, headers)

    def _dispatch(
        self, name: str, args: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        method = methods.METHODS.get(name)
        if method is None:
            return 404, {"ok": False, "error": "unknown_method", "req_method": name}, {}
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token != self.token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        retry_after = self._rate_limit(name, args)
        if retry_after:
            headers = {"Retry-After": str(retry_after)}
            return 429, {"ok": False, "error": "ratelimited"}, headers
        try:
            body = method(self.state, args)
        except state.SlackError as e:
            return 200, {"ok": False, "error": e.code}, {}
        if name == "files.getUploadURLExternal":
            body["upload_url"] = self.url + body["upload_url"]
        return 200, {"ok": True, **body}, {}

    def _rate_limit(self, name: str, args: dict[str, Any]) -> int:
        now = self.state.clock()
        limit = self.limits.methods.get(name)
        if limit is not None:
            wait = self._buckets.take((name,), limit, now)
            if wait:
                return wait
        if name == "chat.postMessage" and self.limits.post_message is not None:
            try:
                channel = self.state.channel(args.get("channel")).id
            except state.SlackError:
                return 0  # the method answers channel_not_found
            return self._buckets.take((name, channel), self.limits.post_message, now)
        return 0

    def _upload(self, file_id: str, request: httpserver.Request) -> httpserver.Response:
        data = request.body
        content_type = request.header("content-type")
        if content_type.startswith("multipart/form-data"):
            parts = _multipart(content_type, data)
            data = next((v for v in parts.values() if isinstance(v, bytes)), b"")
        with self.state.lock:
            upload = self.state.uploads.get(file_id)
            if upload is None or upload.completed:
                return httpserver.text_response("file not found", 404)
            upload.data = data
        return httpserver.text_response(f"OK - {len(data)}")

    def _response_url(self, target: str, request: httpserver.Request) -> httpserver.Response:
        try:
            body = request.json()
        except ValueError:
            return httpserver.text_response("invalid_payload", 400)
        if not isinstance(body, dict):
            return httpserver.text_response("invalid_payload", 400)
        with self.state.lock:
            try:
                self.state.respond(target, body)
            except state.SlackError as e:
                return httpserver.json_response({"ok": False, "error": e.code}, 404)
        return httpserver.json_response({"ok": True})


def parse_args(request: httpserver.Request) -> dict[str, Any]:
    """Query parameters plus the body (JSON, form or multipart), JSON-valued fields decoded."""
    args: dict[str, Any] = {k: v[0] for k, v in request.query.items() if v}
    content_type = request.header("content-type")
    body = request.body
    if body and content_type.startswith("application/json"):
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise ValueError("a JSON body must be an object")
        args.update(decoded)
        return args
    if body and content_type.startswith("multipart/form-data"):
        form = _multipart(content_type, body)
        args.update({k: v.decode() if isinstance(v, bytes) else v for k, v in form.items()})
    elif body:
        args.update({k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()})
    for key in JSON_ARGS:
        if isinstance(args.get(key), str) and args[key]:
            try:
                args[key] = json.loads(args[key])
            except ValueError:
                if key != "files":  # files.upload (v1) sends a file here, not JSON
                    raise
    return args


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """Fields of a multipart/form-data body, each as bytes."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    parsed: MimeMessage = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, bytes] = {}
    for part in parsed.walk():
        if part is parsed:
            continue
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields
