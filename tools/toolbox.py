"""The clients of every outside system, per cluster, built once and shared by all tools.

The bot builds one Toolbox from its Settings (the one place that reads configuration); tools
receive it as a keyword argument and ask it for the client of a named cluster. Clients are made
lazily and cached, so a cluster nobody asks about costs nothing and an unreachable one fails only
the tools that need it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tools.base import Limits


@dataclass(frozen=True)
class ClusterConfig:
    """Where one cluster's systems are."""

    name: str
    prometheus_url: str
    kubecost_url: str
    alertmanager_url: str
    kubeconfig: str | None = None
    """Kubeconfig file; None means in-cluster credentials."""
    context: str | None = None
    kubecost_path: str = "/model/allocation"
    """OpenCost serves the same API without the /model prefix."""
    log_groups: tuple[str, ...] = ()
    aws_region: str = "ap-northeast-2"
    inference_namespace: str = "inference"


@dataclass
class Toolbox:
    """Clients per cluster, plus the limits every call obeys."""

    clusters: Sequence[ClusterConfig]
    limits: Limits = field(default_factory=Limits)
    default: str | None = None
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not self.clusters:
            raise ValueError("a Toolbox needs at least one cluster")
        names = [c.name for c in self.clusters]
        if len(set(names)) != len(names):
            raise ValueError(f"cluster names must be unique: {names}")
        if self.default is None:
            self.default = names[0]
        elif self.default not in names:
            raise ValueError(f"default cluster {self.default!r} is not one of {names}")

    def names(self) -> list[str]:
        """The configured clusters' names, the default first."""
        return sorted((c.name for c in self.clusters), key=lambda n: n != self.default)

    def cluster(self, name: str | None = None) -> ClusterConfig:
        """The named cluster, or the default one; an unknown name is a clear error."""
        wanted = name or self.default
        for cluster in self.clusters:
            if cluster.name == wanted:
                return cluster
        known = ", ".join(c.name for c in self.clusters)
        raise KeyError(f"unknown cluster {wanted!r} (configured: {known})")

    def client(
        self, kind: str, cluster: ClusterConfig, build: Callable[[ClusterConfig], Any]
    ) -> Any:
        """The cached client of ``kind`` for ``cluster``, built by ``build`` the first time."""
        key = (kind, cluster.name)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build(cluster)
            return self._cache[key]
