"""Build the outside-system clients from Settings: the one place configuration meets tools/."""

from __future__ import annotations

from bot.config import ClusterSettings, Settings
from tools import base, toolbox


def build_toolbox(settings: Settings) -> toolbox.Toolbox:
    """A Toolbox for the default cluster (the top-level settings) plus every extra one."""
    default = ClusterSettings(
        name=settings.cluster_name,
        kubeconfig=settings.kubeconfig,
        kube_context=settings.kube_context,
        prometheus_url=settings.prometheus_url,
        alertmanager_url=settings.alertmanager_url,
        kubecost_url=settings.kubecost_url,
        kubecost_path=settings.kubecost_path,
        log_groups=settings.log_groups,
        aws_region=settings.aws_region,
    )
    clusters = [
        toolbox.ClusterConfig(
            name=c.name,
            kubeconfig=str(c.kubeconfig) if c.kubeconfig else None,
            context=c.kube_context,
            prometheus_url=c.prometheus_url,
            alertmanager_url=c.alertmanager_url,
            kubecost_url=c.kubecost_url,
            kubecost_path=c.kubecost_path,
            log_groups=tuple(c.log_groups),
            aws_region=c.aws_region,
            inference_namespace=settings.inference_namespace,
        )
        for c in [default, *settings.clusters]
    ]
    limits = base.Limits(
        timeout=settings.tool_timeout_seconds, output_tokens=settings.tool_output_tokens
    )
    return toolbox.Toolbox(clusters, limits=limits, default=default.name)
