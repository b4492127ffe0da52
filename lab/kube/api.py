"""Routing of API requests: discovery, reads (list, get, watch, logs, Table output) and the
dispatch of writes to ``writes``. Transport-free: takes a Request, returns a Response, so the
HTTP layer (``server``) only moves bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lab.kube import errors, logs, patch, resources, table, writes
from lab.kube.resources import Resource
from lab.kube.selectors import SelectorError, field_predicate, label_predicate
from lab.kube.store import NotFound, ObjectStore
from lab.kube.watch import WatchHub

Obj = dict[str, Any]
VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T00:00:00Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_WATCH_TIMEOUT = 1800.0


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    """Lower-case header names."""
    body: bytes = b""

    @property
    def dry_run(self) -> bool:
        value = self.query.get("dryRun")
        if value in (None, ""):
            return False
        if value != "All":
            raise errors.bad_request(f"Invalid dryRun value: {value!r}; must be 'All'")
        return True

    def json_body(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as e:
            raise errors.bad_request(f"error decoding request body: {e}") from e


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(doc).encode())


def error_response(error: errors.ApiError) -> Response:
    response = json_response(error.status(), error.code)
    response.headers.update(error.headers)
    return response


@dataclass(frozen=True)
class Target:
    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_target(group: str, version: str, rest: list[str]) -> Target:
    """``[namespaces/NS/]PLURAL[/NAME[/SUB]]`` under a group version."""
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        candidate = resources.lookup(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    resource = resources.lookup(group, version, rest[0]) if rest else None
    if resource is None or len(rest) > 3:
        raise errors.no_route()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and sub not in resource.subresources:
        raise errors.no_route()
    if resource.namespaced and namespace is None and name is not None:
        raise errors.no_route()
    return Target(resource, namespace, name, sub)


class Api:
    """Answers API requests from the objects in ``store``."""

    def __init__(self, store: ObjectStore, *, hub: WatchHub, address: str) -> None:
        self.store = store
        self.hub = hub
        self.address = address

    def handle(self, req: Request) -> Response:
        try:
            return self._route(req)
        except errors.ApiError as e:
            return error_response(e)

    def _route(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if req.method != "GET" and (len(parts) < 3 or parts[0] not in ("api", "apis")):
            raise errors.method_not_allowed()
        if len(parts) <= 1:
            return self._discovery(self._top_level(parts[0] if parts else ""))
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) == 2:
            return self._discovery(resources.api_group(parts[1]))
        elif parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        elif parts[:2] == ["openapi", "v3"]:
            return self._discovery(_openapi_v3(parts[2:]))
        else:
            raise errors.no_route()  # /openapi/v2 (kubectl copes) and anything else
        if not rest:
            return self._discovery(resources.api_resource_list(group, version))
        return self._serve(req, parse_target(group, version, rest))

    def _top_level(self, name: str) -> Obj | None:
        if name == "":
            paths = ["/api", "/api/v1", "/apis", "/healthz", "/readyz", "/version"]
            paths += [
                f"/apis/{g}/{v}" for g, vs in resources.group_versions().items() if g for v in vs
            ]
            return {"paths": sorted(paths)}
        docs = {
            "version": lambda: VERSION,
            "api": lambda: resources.api_versions(self.address),
            "apis": resources.api_group_list,
        }
        return docs[name]() if name in docs else None

    @staticmethod
    def _discovery(doc: Obj | None) -> Response:
        if doc is None:
            raise errors.no_route()
        return json_response(doc)

    # -- resources -------------------------------------------------------------------------
    def _serve(self, req: Request, t: Target) -> Response:
        if t.name is None:
            return self._serve_collection(req, t)
        if t.subresource == "log":
            if req.method != "GET":
                raise errors.method_not_allowed()
            return self._logs(req, t)
        if t.subresource == "scale":
            return self._scale(req, t)
        return self._serve_object(req, t)

    def _serve_collection(self, req: Request, t: Target) -> Response:
        if req.method == "GET":
            return self._watch(req, t) if _is_true(req.query.get("watch")) else self._list(req, t)
        if req.method == "POST" and (t.namespace is not None or not t.resource.namespaced):
            obj = writes.create(
                self.store, t.resource, t.namespace, req.json_body(), dry_run=req.dry_run
            )
            return json_response(obj, 201)
        raise errors.method_not_allowed()

    def _serve_object(self, req: Request, t: Target) -> Response:
        r, ns, name = t.resource, t.namespace, t.name or ""
        status_only = t.subresource == "status"
        if req.method == "GET":
            obj = self._get(r, ns, name)
            return self._maybe_table(req, r, [obj]) or json_response(obj)
        if req.method == "PUT":
            obj = writes.update(
                self.store,
                r,
                ns,
                name,
                req.json_body(),
                dry_run=req.dry_run,
                status_only=status_only,
            )
        elif req.method == "PATCH":
            obj = writes.patch_object(
                self.store,
                r,
                ns,
                name,
                req.body,
                content_type=_content_type(req),
                dry_run=req.dry_run,
                status_only=status_only,
            )
        elif req.method == "DELETE" and not status_only:
            options = req.json_body() if req.body else None
            obj = writes.delete(self.store, r, ns, name, options, dry_run=req.dry_run)
        else:
            raise errors.method_not_allowed()
        return json_response(obj)

    def _get(self, r: Resource, namespace: str | None, name: str) -> Obj:
        try:
            return self.store.get(r.kind, namespace, name)
        except NotFound as e:
            raise errors.not_found(r, name) from e

    def _selected(self, req: Request, t: Target) -> list[Obj]:
        r = t.resource
        try:
            by_label = label_predicate(req.query.get("labelSelector"))
            by_field = field_predicate(req.query.get("fieldSelector"), r.kind, custom=r.custom)
        except SelectorError as e:
            raise errors.bad_request(str(e)) from e
        return [o for o in self.store.list(r.kind, t.namespace) if by_label(o) and by_field(o)]

    def _list(self, req: Request, t: Target) -> Response:
        r = t.resource
        items = self._selected(req, t)
        table_response = self._maybe_table(req, r, items)
        if table_response is not None:
            return table_response
        return json_response(
            {
                "kind": f"{r.kind}List",
                "apiVersion": r.api_version,
                "metadata": {"resourceVersion": self.store.resource_version},
                "items": items,
            }
        )

    def _maybe_table(self, req: Request, r: Resource, items: list[Obj]) -> Response | None:
        if not _wants_table(req):
            return None
        doc = table.build(
            r,
            items,
            resource_version=self.store.resource_version,
            include_object=self._include_object(req),
        )
        return json_response(doc)

    def _table_render(self, req: Request, r: Resource) -> Callable[[Obj, bool], Obj]:
        """Watch events as one-row Tables, column definitions in the first only (kubectl -w)."""
        include = self._include_object(req)

        def render(obj: Obj, first: bool) -> Obj:
            version = obj["metadata"].get("resourceVersion", "")
            return table.build(
                r, [obj], resource_version=version, include_object=include, headers=first
            )

        return render

    @staticmethod
    def _include_object(req: Request) -> str:
        include = req.query.get("includeObject") or "Metadata"
        if include not in ("None", "Metadata", "Object"):
            raise errors.bad_request(f"unrecognized includeObject value: {include!r}")
        return include

    def _watch(self, req: Request, t: Target) -> Response:
        r = t.resource
        try:
            by_label = label_predicate(req.query.get("labelSelector"))
            by_field = field_predicate(req.query.get("fieldSelector"), r.kind, custom=r.custom)
        except SelectorError as e:
            raise errors.bad_request(str(e)) from e

        def matches(obj: Obj) -> bool:
            in_ns = t.namespace is None or obj["metadata"].get("namespace") == t.namespace
            return in_ns and by_label(obj) and by_field(obj)

        version = req.query.get("resourceVersion")
        since = int(version) if version and version.isdigit() and version != "0" else None
        timeout = float(req.query.get("timeoutSeconds") or _WATCH_TIMEOUT)
        render = self._table_render(req, r) if _wants_table(req) else _as_is
        stream = self.hub.stream(
            r.kind,
            self._selected(req, t),
            since_version=since,
            matches=matches,
            timeout=timeout,
            render=render,
        )
        return Response(200, content_type="application/json", stream=stream)

    # -- subresources ----------------------------------------------------------------------
    def _scale(self, req: Request, t: Target) -> Response:
        r, ns, name = t.resource, t.namespace, t.name or ""
        if req.method == "GET":
            return json_response(writes.scale_of(self._get(r, ns, name)))
        if req.method == "PUT":
            return json_response(
                writes.update_scale(self.store, r, ns, name, req.json_body(), dry_run=req.dry_run)
            )
        if req.method == "PATCH":
            scale = writes.patch_scale(
                self.store,
                r,
                ns,
                name,
                req.body,
                content_type=_content_type(req),
                dry_run=req.dry_run,
            )
            return json_response(scale)
        raise errors.method_not_allowed()

    def _logs(self, req: Request, t: Target) -> Response:
        pod = self._get(t.resource, t.namespace, t.name or "")
        text = logs.log_text(self.store, pod, req.query)
        return Response(200, text.encode(), "text/plain")


def _openapi_v3(rest: list[str]) -> Obj | None:
    if not rest:
        return resources.openapi_v3_root()
    if rest[0] == "api" and len(rest) == 2:
        return resources.openapi_v3_group_version("", rest[1])
    if rest[0] == "apis" and len(rest) == 3:
        return resources.openapi_v3_group_version(rest[1], rest[2])
    return None


def _wants_table(req: Request) -> bool:
    return "as=table" in req.headers.get("accept", "").replace(" ", "").lower()


def _as_is(obj: Obj, first: bool) -> Obj:
    return obj


def _is_true(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _content_type(req: Request) -> str:
    return patch.content_type_of(req.headers.get("content-type"))
