"""The Kubernetes API as the kube tools reach it: one client per cluster, read-only GETs, and
the one place where the client's and urllib3's exceptions become the tool error tree.

    HTTP 404                               -> NotFound
    HTTP 429, 5xx                          -> ServerError  (the boundary retries it)
    other 4xx (400, 401, 403, 409, 422, …) -> Rejected, with the API's own Status message
    refused, reset, DNS, TLS (ApiException status 0) -> Unavailable
    read or connect timeout                -> Timeout

The client makes no retries of its own (urllib3 ``Retry(0)``): the boundary in ``tools.base``
owns retries and the deadline, and hidden retries would break that deadline.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from tools import base, budget
from tools.toolbox import ClusterConfig, Toolbox

SOURCE = "kubernetes"
ALL = "*"
"""The namespace argument that means every namespace."""
Query = list[tuple[str, str]]


def client(box: Toolbox, cluster: ClusterConfig) -> Any:
    """The cached ``kubernetes.client.ApiClient`` of ``cluster`` (built on first use)."""
    return box.client("kubernetes", cluster, _build)


def _build(cluster: ClusterConfig) -> Any:
    configuration = k8s_client.Configuration()
    configuration.retries = urllib3.util.Retry(0, redirect=0)
    try:
        if cluster.kubeconfig is None:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return k8s_client.ApiClient(configuration=configuration)
        return k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=cluster.kubeconfig,
            context=cluster.context,
            client_configuration=configuration,
        )
    except (k8s_config.ConfigException, OSError, ValueError, TypeError) as e:
        where = cluster.kubeconfig or "in-cluster service account"
        raise base.Unavailable(SOURCE, f"cannot load credentials from {where}: {e}") from e


@dataclass(frozen=True)
class Read:
    """One GET a tool makes; ``missing`` explains a 404 of a whole API (e.g. no Karpenter)."""

    path: str
    query: tuple[tuple[str, str], ...] = ()
    text: bool = False
    missing: str | None = None

    @property
    def line(self) -> str:
        return request_line(self.path, list(self.query))


def resolve(box: Toolbox, cluster: str | None, tool: str) -> ClusterConfig | base.ToolResult:
    """The named cluster, or an error result naming the configured ones."""
    try:
        return box.cluster(cluster)
    except KeyError as e:
        return refuse(box, tool=tool, cluster=cluster, error=base.Rejected(SOURCE, str(e.args[0])))


def refuse(
    box: Toolbox, *, tool: str, cluster: str | None, error: base.ToolError, call: str = ""
) -> base.ToolResult:
    """An error result for a request refused before any call (bad arguments)."""

    def fetch(_: float) -> base.Output:
        raise error

    return base.run(
        tool=tool,
        source=SOURCE,
        call=call,
        fetch=fetch,
        limits=box.limits,
        cluster=cluster,
        retry=False,
    )


def run(
    *,
    box: Toolbox,
    config: ClusterConfig,
    tool: str,
    reads: Sequence[Read],
    render: Callable[[list[Any]], base.Output],
    redact_data: bool = True,
) -> base.ToolResult:
    """Make ``reads`` in order within the call's deadline and render their answers.

    ``call`` is the request lines, one per line, exactly as sent.
    """

    def fetch(remaining: float) -> base.Output:
        deadline = time.monotonic() + remaining
        api = client(box, config)
        answers = []
        for r in reads:
            try:
                answer = get(
                    api, r.path, list(r.query), timeout=deadline - time.monotonic(), text=r.text
                )
            except base.NotFound as e:
                if r.missing is None:
                    raise
                raise base.NotFound(SOURCE, f"{e.message}; {r.missing}") from e
            answers.append(answer)
        return render(answers)

    return base.run(
        tool=tool,
        source=SOURCE,
        call="\n".join(r.line for r in reads),
        fetch=fetch,
        limits=box.limits,
        cluster=config.name,
        redact_data=redact_data,
    )


def collection(namespace: str, *parts: str) -> str:
    """``/api/v1/namespaces/NS/pods`` from ``("api", "v1", "pods")``; ``/api/v1/pods`` for ALL."""
    *prefix, plural = parts
    if namespace == ALL:
        return "/" + "/".join([*prefix, plural])
    return "/" + "/".join(prefix) + path("namespaces", namespace, plural)


def scope(namespace: str) -> str:
    return "in all namespaces" if namespace == ALL else f"in namespace {namespace}"


def fit(
    header: str, headers: list[str], rows: list[list[Any]], limits: base.Limits, what: str
) -> tuple[str, str | None]:
    """A header line over a table, the table cut to what the budget leaves."""
    room = limits.max_chars - len(header) - 1
    text, cut = budget.fit_table(headers, rows, room, what=what)
    return f"{header}\n{text}", cut


def path(*parts: str) -> str:
    """An API path from segments, each escaped as the client escapes path parameters."""
    return "/" + "/".join(quote(p, safe="") for p in parts)


def request_line(api_path: str, query: Query) -> str:
    """``GET /path?k=v`` exactly as the client sends it (values escaped with ``quote``)."""
    encoded = "&".join(f"{k}={quote(v)}" for k, v in query)
    return f"GET {api_path}{'?' + encoded if encoded else ''}"


def get(api: Any, api_path: str, query: Query, *, timeout: float, text: bool = False) -> Any:
    """GET ``api_path`` within ``timeout`` seconds: parsed JSON, or the body as text."""
    accept = "text/plain, */*" if text else "application/json"
    method, url, headers, _, _ = api.param_serialize(
        method="GET",
        resource_path=api_path,
        query_params=list(query),
        header_params={"Accept": accept},
        auth_settings=["BearerToken"],
    )
    host = api.configuration.host
    try:
        response = api.call_api(method, url, headers, _request_timeout=max(timeout, 0.001))
        try:
            raw: bytes = response.read()
        finally:
            response.response.release_conn()
    except (k8s_client.ApiException, urllib3.exceptions.HTTPError, OSError) as e:
        raise _mapped(e, host=host, timeout=timeout) from e
    if not 200 <= response.status < 300:
        raise status_error(response.status, raw)
    body = raw.decode("utf-8", errors="replace")
    if text:
        return body
    try:
        return json.loads(body)
    except ValueError as e:
        raise base.ServerError(
            SOURCE, f"the API server answered with non-JSON: {body[:200]}"
        ) from e


def status_error(status: int, body: bytes | str | None) -> base.ToolError:
    """The tree's error for an HTTP status, carrying the API's own Status message."""
    message = f"HTTP {status}: {_status_message(body)}"
    if status == 404:
        return base.NotFound(SOURCE, message)
    if status == 429 or status >= 500:
        return base.ServerError(SOURCE, message)
    if status in (401, 403):
        message += " (check the bot's credentials and RBAC for this cluster)"
    return base.Rejected(SOURCE, message)


def _status_message(body: bytes | str | None) -> str:
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body or ""
    try:
        doc = json.loads(text)
    except ValueError:
        return text.strip()[:300] or "(empty body)"
    if isinstance(doc, dict) and doc.get("message"):
        reason = f" ({doc['reason']})" if doc.get("reason") else ""
        return f"{doc['message']}{reason}"
    return text.strip()[:300]


def _mapped(e: Exception, *, host: str, timeout: float) -> base.ToolError:
    if isinstance(e, k8s_client.ApiException):
        if not e.status:  # the client's way of saying TLS failed before any answer
            return base.Unavailable(SOURCE, f"cannot talk to {host}: {e.reason}")
        return status_error(e.status, e.body)
    cause: Exception = e
    if isinstance(e, urllib3.exceptions.MaxRetryError) and e.reason is not None:
        cause = e.reason
    if isinstance(cause, urllib3.exceptions.NewConnectionError | ConnectionError):
        why = str(cause).split("): ", 1)[-1]  # drop urllib3's "HTTPConnection(host=…)" prefix
        return base.Unavailable(SOURCE, f"cannot connect to the API server at {host}: {why}")
    if isinstance(cause, urllib3.exceptions.TimeoutError | socket.timeout):
        return base.Timeout(
            SOURCE, f"no answer from the API server at {host} within {timeout:.1f}s"
        )
    return base.Unavailable(SOURCE, f"lost the connection to {host}: {type(cause).__name__}")
