"""Build the outside-system clients from Settings: the one place configuration meets tools/."""

from __future__ import annotations

from bot.config import Settings
from tools import base, toolbox


def build_toolbox(settings: Settings) -> toolbox.Toolbox:
    """A Toolbox for the default cluster plus every configured extra one."""
    default = toolbox.ClusterConfig(
        name=settings.cluster_name,
        kubeconfig=str(settings.kubeconfig) if settings.kubeconfig else None,
        context=settings.kube_context,
        prometheus_url=settings.prometheus_url,
        alertmanager_url=settings.alertmanager_url,
        kubecost_url=settings.kubecost_url,
        kubecost_path=settings.kubecost_path,
        log_groups=tuple(settings.log_groups),
        aws_region=settings.aws_region,
        inference_namespace=settings.inference_namespace,
    )
    extra = [
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
        for c in settings.clusters
    ]
    limits = base.Limits(
        timeout=settings.tool_timeout_seconds, output_tokens=settings.tool_output_tokens
    )
    return toolbox.Toolbox([default, *extra], limits=limits, default=default.name)
