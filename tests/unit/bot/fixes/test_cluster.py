"""NodePool, node and replica fixes: requirements only widen, limits and replicas stay bounded."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bot import config
from bot.fixes import catalog

INSTANCE = "node.kubernetes.io/instance-type"
ZONE = "topology.kubernetes.io/zone"
CAPACITY = "karpenter.sh/capacity-type"


def _requirements(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["requirements"]


# add-instance-types


def test_instance_types_gain_the_alternatives(*, nodepool: Any, context: Any, verify: Any) -> None:
    obj = nodepool(
        [
            {"key": CAPACITY, "operator": "In", "values": ["on-demand"]},
            {"key": INSTANCE, "operator": "In", "values": ["p4d.24xlarge"]},
        ]
    )
    expected = copy.deepcopy(obj)
    _requirements(expected)[1]["values"] += ["p4de.24xlarge", "p5.48xlarge"]
    fix = verify(obj, catalog.build("add-instance-types", obj, context=context()), expected)
    assert fix.target == "nodepool/gpu"
    assert fix.diff == f"requirements[{INSTANCE}].values: + p4de.24xlarge, p5.48xlarge"
    assert {
        "op": "test",
        "path": "/spec/template/spec/requirements/1/key",
        "value": INSTANCE,
    } in fix.ops


def test_instance_types_only_add_what_is_missing(
    *, nodepool: Any, context: Any, verify: Any
) -> None:
    obj = nodepool([{"key": INSTANCE, "operator": "In", "values": ["p5.48xlarge", "p4d.24xlarge"]}])
    expected = copy.deepcopy(obj)
    _requirements(expected)[0]["values"].append("p4de.24xlarge")
    verify(obj, catalog.build("add-instance-types", obj, context=context()), expected)


def test_instance_types_from_settings(*, nodepool: Any, context: Any, verify: Any) -> None:
    obj = nodepool([{"key": INSTANCE, "operator": "In", "values": ["g5.xlarge"]}])
    expected = copy.deepcopy(obj)
    _requirements(expected)[0]["values"].append("g6e.xlarge")
    ctx = context(settings=config.Fixes(gpu_alternatives=["g6e.xlarge"]))
    verify(obj, catalog.build("add-instance-types", obj, context=ctx), expected)


@pytest.mark.parametrize(
    ("requirements", "words"),
    [
        (
            [{"key": CAPACITY, "operator": "In", "values": ["spot"]}],
            "already allows every instance type",
        ),
        ([{"key": INSTANCE, "operator": "NotIn", "values": ["g5.xlarge"]}], "uses NotIn"),
        (
            [{"key": INSTANCE, "operator": "In", "values": ["p4de.24xlarge", "p5.48xlarge"]}],
            "already allows",
        ),
    ],
)
def test_instance_types_refusals(
    *, requirements: list[Any], words: str, nodepool: Any, context: Any, refused: Any
) -> None:
    refused(catalog.build("add-instance-types", nodepool(requirements), context=context()), words)


# add-zones


def test_zones_gain_the_clusters_other_zones_and_configured_ones(
    *, nodepool: Any, context: Any, verify: Any
) -> None:
    obj = nodepool([{"key": ZONE, "operator": "In", "values": ["ap-northeast-2a"]}])
    expected = copy.deepcopy(obj)
    _requirements(expected)[0]["values"] += [
        "ap-northeast-2b",
        "ap-northeast-2c",
        "ap-northeast-2d",
    ]
    ctx = context(
        zones=("ap-northeast-2c", "ap-northeast-2a", "ap-northeast-2b"),
        settings=config.Fixes(extra_zones=["ap-northeast-2d"]),
    )
    verify(obj, catalog.build("add-zones", obj, context=ctx), expected)


@pytest.mark.parametrize(
    ("requirements", "zones", "words"),
    [
        (
            [{"key": INSTANCE, "operator": "In", "values": ["p4d.24xlarge"]}],
            ("a", "b"),
            "already allows every zone",
        ),
        (
            [{"key": ZONE, "operator": "In", "values": ["ap-northeast-2a"]}],
            ("ap-northeast-2a",),
            "no zone besides",
        ),
    ],
)
def test_zones_refusals(
    *,
    requirements: list[Any],
    zones: tuple[str, ...],
    words: str,
    nodepool: Any,
    context: Any,
    refused: Any,
) -> None:
    refused(catalog.build("add-zones", nodepool(requirements), context=context(zones=zones)), words)


# allow-on-demand


def test_on_demand_added_to_a_spot_only_pool(*, nodepool: Any, context: Any, verify: Any) -> None:
    obj = nodepool([{"key": CAPACITY, "operator": "In", "values": ["spot"]}])
    expected = copy.deepcopy(obj)
    _requirements(expected)[0]["values"].append("on-demand")
    verify(obj, catalog.build("allow-on-demand", obj, context=context()), expected)


@pytest.mark.parametrize(
    ("requirements", "words"),
    [
        ([], "already launches on-demand"),
        (
            [{"key": CAPACITY, "operator": "In", "values": ["spot", "on-demand"]}],
            "already allows on-demand",
        ),
        ([{"key": CAPACITY, "operator": "NotIn", "values": ["on-demand"]}], "uses NotIn"),
    ],
)
def test_on_demand_refusals(
    *, requirements: list[Any], words: str, nodepool: Any, context: Any, refused: Any
) -> None:
    refused(catalog.build("allow-on-demand", nodepool(requirements), context=context()), words)


# raise-nodepool-limit


@pytest.mark.parametrize(("old", "new"), [(64, 96), (16, 24), (5, 8), (800, 1024), (1000, 1024)])
def test_gpu_limit_raised_by_half_within_the_maximum(
    *, old: int, new: int, nodepool: Any, context: Any, verify: Any
) -> None:
    obj = nodepool([], limits={"nvidia.com/gpu": old, "cpu": 1000})
    expected = copy.deepcopy(obj)
    expected["spec"]["limits"]["nvidia.com/gpu"] = new
    fix = verify(obj, catalog.build("raise-nodepool-limit", obj, context=context()), expected)
    assert {"op": "test", "path": "/spec/limits/nvidia.com~1gpu", "value": old} in fix.ops


def test_gpu_limit_served_as_a_string_stays_a_string(
    *, nodepool: Any, context: Any, verify: Any
) -> None:
    obj = nodepool([], limits={"nvidia.com/gpu": 64})
    obj["spec"]["limits"]["nvidia.com/gpu"] = "64"
    expected = copy.deepcopy(obj)
    expected["spec"]["limits"]["nvidia.com/gpu"] = "96"
    verify(obj, catalog.build("raise-nodepool-limit", obj, context=context()), expected)


@pytest.mark.parametrize(
    ("limits", "maximum", "words"),
    [
        ({"nvidia.com/gpu": 1024}, 1024, "already at the maximum 1024"),
        ({"nvidia.com/gpu": 64}, 64, "already at the maximum 64"),
        ({"cpu": 1000}, 1024, "no nvidia.com/gpu limit"),
        (None, 1024, "no nvidia.com/gpu limit"),
    ],
)
def test_gpu_limit_refusals(
    *,
    limits: dict[str, Any] | None,
    maximum: int,
    words: str,
    nodepool: Any,
    context: Any,
    refused: Any,
) -> None:
    ctx = context(settings=config.Fixes(nodepool_gpu_limit_max=maximum))
    refused(catalog.build("raise-nodepool-limit", nodepool([], limits=limits), context=ctx), words)


# cordon-node


def test_cordon_sets_unschedulable(*, node: Any, context: Any, verify: Any) -> None:
    obj = node("p4d.24xlarge", name="ip-10-1-3-71.ap-northeast-2.compute.internal")
    expected = copy.deepcopy(obj)
    expected["spec"]["unschedulable"] = True
    fix = verify(obj, catalog.build("cordon-node", obj, context=context()), expected)
    assert fix.target == "node/ip-10-1-3-71.ap-northeast-2.compute.internal"


def test_cordon_replaces_an_explicit_false(*, node: Any, context: Any, verify: Any) -> None:
    obj = node()
    obj["spec"]["unschedulable"] = False
    expected = copy.deepcopy(obj)
    expected["spec"]["unschedulable"] = True
    fix = verify(obj, catalog.build("cordon-node", obj, context=context()), expected)
    assert fix.diff == "spec.unschedulable: false → true"


def test_cordon_of_a_cordoned_node_is_refused(*, node: Any, context: Any, refused: Any) -> None:
    refused(
        catalog.build("cordon-node", node(unschedulable=True), context=context()),
        "already cordoned",
    )


# scale-up / scale-down


@pytest.mark.parametrize(
    ("code", "replicas", "at_proposal", "new"),
    [
        ("scale-up", 1, None, 2),
        ("scale-up", 2, None, 3),
        ("scale-up", 3, 2, 4),
        ("scale-down", 2, None, 1),
        ("scale-down", 4, 4, 3),
    ],
)
def test_scale_within_bounds(
    *,
    code: str,
    replicas: int,
    at_proposal: int | None,
    new: int,
    deployment: Any,
    context: Any,
    verify: Any,
) -> None:
    obj = deployment(replicas=replicas)
    expected = copy.deepcopy(obj)
    expected["spec"]["replicas"] = new
    fix = verify(
        obj, catalog.build(code, obj, context=context(replicas_at_proposal=at_proposal)), expected
    )
    assert fix.diff == f"spec.replicas: {replicas} → {new}"


@pytest.mark.parametrize(
    ("code", "replicas", "at_proposal", "settings", "words"),
    [
        ("scale-down", 1, None, config.Fixes(), "minimum is 1"),
        ("scale-down", 2, None, config.Fixes(min_replicas=2), "minimum is 2"),
        ("scale-up", 2, 1, config.Fixes(), "maximum is 2 (2 x 1 at proposal time)"),
        ("scale-up", 4, 2, config.Fixes(), "maximum is 4"),
        ("scale-up", 3, None, config.Fixes(replicas_max_factor=1.0), "maximum is 3"),
    ],
)
def test_scale_bounds_refused(
    *,
    code: str,
    replicas: int,
    at_proposal: int | None,
    settings: config.Fixes,
    words: str,
    deployment: Any,
    context: Any,
    refused: Any,
) -> None:
    obj = deployment(replicas=replicas)
    refused(
        catalog.build(
            code, obj, context=context(replicas_at_proposal=at_proposal, settings=settings)
        ),
        words,
    )


# rollout-restart

AT = "2026-11-28T02:40:00Z"


def test_restart_adds_the_annotations_map(*, deployment: Any, context: Any, verify: Any) -> None:
    obj = deployment()
    assert "annotations" not in obj["spec"]["template"]["metadata"]
    expected = copy.deepcopy(obj)
    expected["spec"]["template"]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/restartedAt": AT
    }
    verify(obj, catalog.build("rollout-restart", obj, context=context(restarted_at=AT)), expected)


@pytest.mark.parametrize("previous", [None, "2026-11-01T00:00:00Z"])
def test_restart_sets_the_annotation_among_others(
    *, previous: str | None, deployment: Any, context: Any, verify: Any
) -> None:
    obj = deployment()
    annotations: dict[str, str] = {"prometheus.io/scrape": "true"}
    if previous:
        annotations["kubectl.kubernetes.io/restartedAt"] = previous
    obj["spec"]["template"]["metadata"]["annotations"] = annotations
    expected = copy.deepcopy(obj)
    expected["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = (
        AT
    )
    fix = verify(
        obj, catalog.build("rollout-restart", obj, context=context(restarted_at=AT)), expected
    )
    assert (
        fix.ops[-1]["path"]
        == "/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt"
    )


def test_restart_needs_a_time(*, deployment: Any, context: Any, refused: Any) -> None:
    refused(catalog.build("rollout-restart", deployment(), context=context()), "no restart time")
