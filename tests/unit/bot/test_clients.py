"""Settings become one Toolbox: the default cluster plus the configured others."""

import os
from pathlib import Path

import pytest

from bot import clients, config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("OPSBOT_", "SLACK_")):
            monkeypatch.delenv(name)


def _settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> config.Settings:
    path = tmp_path / "opsbot.yaml"
    path.write_text(text)
    monkeypatch.setenv("OPSBOT_CONFIG", str(path))
    return config.load_settings()


def test_default_and_extra_clusters(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = _settings(
        monkeypatch,
        tmp_path,
        """
cluster_name: prod-apne2
kubeconfig: /etc/opsbot/kubeconfig
tool_timeout_seconds: 4
tool_output_tokens: 1500
clusters:
  - name: prod-usw2
    kube_context: arn:aws:eks:us-west-2:123456789012:cluster/prod-usw2
    prometheus_url: http://prometheus.usw2.internal:9090
    alertmanager_url: http://alertmanager.usw2.internal:9093
    kubecost_url: http://opencost.usw2.internal:9003
    kubecost_path: /allocation
    log_groups: [/eks/usw2/inference]
    aws_region: us-west-2
""",
    )
    box = clients.build_toolbox(settings)
    assert box.cluster().name == "prod-apne2"
    assert box.cluster().kubeconfig == "/etc/opsbot/kubeconfig"
    west = box.cluster("prod-usw2")
    assert (west.context, west.kubecost_path, west.aws_region) == (
        "arn:aws:eks:us-west-2:123456789012:cluster/prod-usw2",
        "/allocation",
        "us-west-2",
    )
    assert west.log_groups == ("/eks/usw2/inference",)
    assert (box.limits.timeout, box.limits.output_tokens) == (4, 1500)
    with pytest.raises(
        KeyError, match="unknown cluster 'staging' \\(configured: prod-apne2, prod-usw2\\)"
    ):
        box.cluster("staging")


def test_a_repeated_cluster_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(config.ConfigError, match="default cluster"):
        _settings(
            monkeypatch,
            tmp_path,
            "cluster_name: a\nclusters: [{name: a, prometheus_url: x, alertmanager_url: y, kubecost_url: z}]\n",
        )
