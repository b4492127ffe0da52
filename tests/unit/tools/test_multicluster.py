"""Tools take a cluster name: each cluster answers from its own API, the default when omitted."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.kube.cluster import FakeCluster
from lab.scenario import loader
from tools import base, catalog, kube, kube_api
from tools.toolbox import ClusterConfig, Toolbox


def _cluster(name: str, node: str) -> FakeCluster:
    scenario = loader.load_text(
        f"name: {name}\ncluster: {{name: {name}, nodes: [{{name: {node}, instance_type: g5.xlarge}}]}}\n"
    )
    return FakeCluster.from_scenario(scenario).start()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Toolbox]:
    seoul, oregon = _cluster("prod-apne2", "gpu-seoul"), _cluster("prod-usw2", "gpu-oregon")
    configs = []
    for name, fake in (("prod-apne2", seoul), ("prod-usw2", oregon)):
        path = fake.write_kubeconfig(tmp_path / f"{name}.kubeconfig")
        configs.append(
            ClusterConfig(
                name=name,
                kubeconfig=str(path),
                prometheus_url="http://127.0.0.1:9",
                kubecost_url="http://127.0.0.1:9",
                alertmanager_url="http://127.0.0.1:9",
            )
        )
    toolbox = Toolbox(configs, limits=base.Limits(timeout=5))
    try:
        yield toolbox
    finally:
        for config in configs:
            kube_api.client(toolbox, config).close()
        seoul.stop()
        oregon.stop()


def test_each_cluster_answers_from_its_own_api(box: Toolbox) -> None:
    default = kube.list_nodes(box=box)
    assert (
        default.cluster == "prod-apne2"
        and "gpu-seoul" in default.text
        and "gpu-oregon" not in default.text
    )
    west = catalog.get("list_nodes").run(box, {"cluster": "prod-usw2"})
    assert (
        west.cluster == "prod-usw2" and "gpu-oregon" in west.text and "gpu-seoul" not in west.text
    )


def test_an_unknown_cluster_is_an_error_result(box: Toolbox) -> None:
    result = kube.list_nodes(box=box, cluster="staging")
    assert result.status == "error"
    assert "unknown cluster 'staging'" in result.text
