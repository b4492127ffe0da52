"""A fake Kubernetes cluster from one scenario: store, built objects, rollout controller, API.

The one object the demo, the eval and the tests start::

    with FakeCluster.from_scenario(scenario, step_seconds=0.05) as cluster:
        cluster.write_kubeconfig(tmp_path / "kubeconfig")
        ...  # kubectl / the kubernetes client against cluster.url
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import TracebackType

from lab.kube import build, rollout, server
from lab.kube.store import ObjectStore
from lab.scenario import models


class FakeCluster:
    """Serves ``store`` over HTTP and rolls its Deployments out after changes."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        outcome: rollout.Outcome = "succeeds",
        step_seconds: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.store = store
        self.controller = rollout.RolloutController(
            store, outcome=outcome, step_seconds=step_seconds
        )
        self.server = server.KubeApiServer(store, host=host, port=port)
        self._url: str | None = None

    @classmethod
    def from_scenario(
        cls,
        scenario: models.Scenario,
        *,
        step_seconds: float = 1.0,
        now: datetime | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> FakeCluster:
        """The scenario's cluster; a change rolls out as ``scenario.after_fix`` says, in steps
        of ``step_seconds`` (a rollout takes two steps, a failing pod crashes every step)."""
        store = ObjectStore()
        build.populate(store, scenario, now=now)
        return cls(
            store,
            outcome=scenario.after_fix.rollout,
            step_seconds=step_seconds,
            host=host,
            port=port,
        )

    @property
    def url(self) -> str:
        """Where the API is served (still answered after stop(), for messages)."""
        if self._url is None:
            raise RuntimeError("the cluster is not started")
        return self._url

    def start(self) -> FakeCluster:
        self.controller.start()
        self.server.start()
        self._url = self.server.url
        return self

    def stop(self) -> None:
        self.server.stop()
        self.controller.stop()

    def __enter__(self) -> FakeCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def write_kubeconfig(
        self, path: str | Path, *, context: str = "lab", namespace: str = "inference"
    ) -> Path:
        """A kubeconfig for kubectl and the ``kubernetes`` client, pointing at this cluster."""
        return self.server.write_kubeconfig(path, context=context, namespace=namespace)
