"""EC2's query protocol for the EBS facts the bot reads: DescribeVolumes and DescribeSnapshots.

Volumes are the EBS volumes behind Bound PVCs, with the ids the Kubernetes fake puts in their
PersistentVolumes (``volumes.volume_id_for``) and the tags the EBS CSI driver sets
(``kubernetes.io/created-for/pvc/name`` …). A volume sits in the zone of the first pod that
mounts its claim (as the Kubernetes fake pins the PV), attached to that pod's node.
Snapshots come from ``aws.snapshots``: ``StartTime`` is now minus ``at``, completed, 100 %.
Filters take EC2's ``*`` and ``?`` wildcards; ``Owner`` ``self`` (or the account) is us.
"""

from __future__ import annotations

import fnmatch
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lab.aws import account
from lab.httpserver import Response
from lab.kube import naming, nodes, volumes
from lab.scenario import models

XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_FACTORS = {
    None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
}  # fmt: skip
_VOLUME_AGE = timedelta(days=30)
VOLUME_FILTERS = frozenset(
    {
        "volume-id", "status", "availability-zone", "size", "volume-type", "encrypted",
        "snapshot-id", "tag-key", "attachment.instance-id", "attachment.status",
        "attachment.device", "multi-attach-enabled",
    }
)  # fmt: skip
SNAPSHOT_FILTERS = frozenset(
    {
        "snapshot-id", "volume-id", "status", "progress", "owner-id", "volume-size",
        "description", "encrypted", "storage-tier", "tag-key",
    }
)  # fmt: skip
Fields = dict[str, list[str]]


class Ec2Error(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def size_gib(quantity: str) -> int:
    """A Kubernetes storage quantity as whole GiB, rounded up as EBS provisions it."""
    match = _QUANTITY.match(quantity.strip())
    if not match:
        return 100
    number = float(match.group(1)) * _FACTORS[match.group(2)]
    return max(1, math.ceil(number / 2**30))


def _default_nodes(cluster: models.Cluster) -> list[models.Node]:
    """Where a workload's default pods run, as the Kubernetes fake places them."""
    gpu = [n for n in cluster.nodes if nodes.labels(n).get("nvidia.com/gpu.present")]
    for group in (gpu, cluster.nodes):
        healthy = [n for n in group if n.ready and not n.unschedulable]
        if healthy or group:
            return healthy or group
    return []


def claim_nodes(cluster: models.Cluster) -> dict[tuple[str, str], models.Node]:
    """The node of the first scheduled pod that mounts each claim (namespace, claim)."""
    by_name = {n.name: n for n in cluster.nodes}
    found: dict[tuple[str, str], models.Node] = {}
    for w in cluster.workloads:
        claims = [
            c for v in w.volumes if (c := (v.get("persistentVolumeClaim") or {}).get("claimName"))
        ]
        if w.pods is not None:
            placed = [by_name[p.node] for p in w.pods if p.node]
        else:
            targets = _default_nodes(cluster)
            placed = [targets[i % len(targets)] for i in range(w.replicas)] if targets else []
        for claim in claims:
            if placed:
                found.setdefault((w.namespace, claim), placed[0])
    return found


@dataclass(frozen=True)
class Item:
    """One volume or snapshot: its XML item and the values each filter name sees."""

    fields: Fields
    item: dict[str, Any]


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def build_volumes(scenario: models.Scenario, *, now: datetime, region: str) -> list[Item]:
    cluster = scenario.cluster
    placed = claim_nodes(cluster)
    out = []
    for pvc in cluster.pvcs:
        if pvc.phase != "Bound":
            continue
        vid = volumes.volume_id_for(pvc.namespace, pvc.name)
        pv = volumes.volume_name(pvc.namespace, pvc.name)
        node = placed.get((pvc.namespace, pvc.name))
        zone = node.zone if node else (cluster.nodes[0].zone if cluster.nodes else f"{region}a")
        kind = pvc.storage_class if pvc.storage_class in ("gp2", "gp3", "io1", "io2") else "gp3"
        size = size_gib(pvc.size)
        attachments = []
        if node is not None:
            attachments.append(
                {
                    "volumeId": vid,
                    "instanceId": naming.instance_id(node.name),
                    "device": "/dev/xvdaa",
                    "status": "attached",
                    "attachTime": now - timedelta(days=2),
                    "deleteOnTermination": False,
                }
            )
        tags = {
            "CSIVolumeName": pv,
            "ebs.csi.aws.com/cluster": "true",
            "kubernetes.io/created-for/pv/name": pv,
            "kubernetes.io/created-for/pvc/name": pvc.name,
            "kubernetes.io/created-for/pvc/namespace": pvc.namespace,
        }
        item: dict[str, Any] = {
            "volumeId": vid,
            "size": size,
            "snapshotId": "",
            "availabilityZone": zone,
            "status": "in-use" if attachments else "available",
            "createTime": now - _VOLUME_AGE,
            "attachmentSet": attachments,
            "tagSet": _tags(tags),
            "volumeType": kind,
            "iops": 3000 if kind != "gp2" else min(16000, max(100, 3 * size)),
            "encrypted": True,
            "multiAttachEnabled": False,
        }
        if kind == "gp3":
            item["throughput"] = 125
        fields = {
            "volume-id": [vid],
            "status": [item["status"]],
            "availability-zone": [zone],
            "size": [str(size)],
            "volume-type": [kind],
            "encrypted": ["true"],
            "snapshot-id": [""],
            "attachment.instance-id": [a["instanceId"] for a in attachments],
            "attachment.status": [a["status"] for a in attachments],
            "attachment.device": [a["device"] for a in attachments],
            "multi-attach-enabled": ["false"],
            **_tag_fields(tags),
        }
        out.append(Item(fields, item))
    return out


def build_snapshots(scenario: models.Scenario, *, now: datetime) -> list[Item]:
    sizes = {f"{p.namespace}/{p.name}": size_gib(p.size) for p in scenario.cluster.pvcs}
    out = []
    for i, snap in enumerate(scenario.aws.snapshots if scenario.aws else []):
        namespace, name = snap.pvc.split("/", 1)
        vid = volumes.volume_id_for(namespace, name)
        started = now - snap.at
        sid = "snap-0" + naming.hex_id("snapshot", snap.pvc, str(snap.at.total_seconds()), str(i))
        content = naming.uid("VolumeSnapshotContent", None, sid)
        tags = {
            "CSIVolumeSnapshotName": f"snapshot-{naming.uid('VolumeSnapshot', namespace, sid)}",
            "ebs.csi.aws.com/cluster": "true",
            "kubernetes.io/created-for/volumesnapshot/name": f"{name}-{started:%Y%m%d%H%M}",
            "kubernetes.io/created-for/volumesnapshot/namespace": namespace,
            "kubernetes.io/created-for/volumesnapshotcontent/name": f"snapcontent-{content}",
        }
        description = f"Created by AWS EBS CSI driver for volume {vid}"
        item = {
            "snapshotId": sid,
            "volumeId": vid,
            "status": "completed",
            "startTime": started,
            "progress": "100%",
            "ownerId": account.ACCOUNT_ID,
            "volumeSize": sizes.get(snap.pvc, 100),
            "description": description,
            "encrypted": True,
            "storageTier": "standard",
            "tagSet": _tags(tags),
        }
        fields = {
            "snapshot-id": [sid],
            "volume-id": [vid],
            "status": ["completed"],
            "progress": ["100%"],
            "owner-id": [account.ACCOUNT_ID],
            "volume-size": [str(item["volumeSize"])],
            "description": [description],
            "encrypted": ["true"],
            "storage-tier": ["standard"],
            **_tag_fields(tags),
        }
        out.append(Item(fields, item))
    return out


def _tag_fields(tags: dict[str, str]) -> Fields:
    return {"tag-key": list(tags), **{f"tag:{k}": [v] for k, v in tags.items()}}


def _members(params: dict[str, str], prefix: str) -> list[str]:
    """``Prefix.1``, ``Prefix.2``… in order (EC2's list encoding)."""
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)$")
    found = sorted((int(m.group(1)), v) for k, v in params.items() if (m := pattern.match(k)))
    return [v for _, v in found]


def _select(items: list[Item], params: dict[str, str], known: frozenset[str]) -> list[Item]:
    """The items every ``Filter.N`` matches (any of its values; EC2 wildcards)."""
    wanted: dict[str, list[str]] = {}
    for n in sorted(int(k.split(".")[1]) for k in params if re.match(r"^Filter\.\d+\.Name$", k)):
        name = params[f"Filter.{n}.Name"]
        if name not in known and not name.startswith("tag:"):
            raise Ec2Error("InvalidParameterValue", f"The filter '{name}' is invalid")
        wanted.setdefault(name, []).extend(_members(params, f"Filter.{n}.Value"))
    return [
        item
        for item in items
        if all(
            any(
                fnmatch.fnmatchcase(have, want.replace("[", "[[]"))  # EC2 knows * and ? only
                for have in item.fields.get(name, [])
                for want in values
            )
            for name, values in wanted.items()
        )
    ]


def _page(items: list[Item], params: dict[str, str], *, most: int) -> tuple[list[Item], str | None]:
    limit = params.get("MaxResults")
    token = params.get("NextToken") or "0"
    if not token.isdigit():
        raise Ec2Error("InvalidParameterValue", f"Invalid value '{token}' for nextToken")
    start = int(token)
    if limit is None:
        return items[start:], None
    if not limit.isdigit() or not 5 <= int(limit) <= most:
        raise Ec2Error(
            "InvalidParameterValue",
            f"Value ( {limit} ) for parameter maxResults is invalid. "
            f"Expecting a value between 5 and {most}.",
        )
    end = start + int(limit)
    return items[start:end], (str(end) if end < len(items) else None)


class Ebs:
    """Answers DescribeVolumes and DescribeSnapshots for one scenario."""

    def __init__(self, scenario: models.Scenario, *, now: datetime) -> None:
        self.volumes = build_volumes(scenario, now=now, region=account.region(scenario))
        self.snapshots = build_snapshots(scenario, now=now)

    def handle(self, params: dict[str, str]) -> Response:
        action = params.get("Action", "")
        try:
            if params.get("DryRun", "").lower() == "true":
                raise Ec2Error(
                    "DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412
                )
            if action == "DescribeVolumes":
                return _xml(action, self.describe_volumes(params))
            if action == "DescribeSnapshots":
                return _xml(action, self.describe_snapshots(params))
            raise Ec2Error(
                "InvalidAction", f"The action {action} is not valid for this web service."
            )
        except Ec2Error as e:
            return _error(e)

    def describe_volumes(self, params: dict[str, str]) -> dict[str, Any]:
        items = self.volumes
        ids = _members(params, "VolumeId")
        if ids:
            have = {v.item["volumeId"] for v in items}
            missing = [i for i in ids if i not in have]
            if missing:
                raise Ec2Error(
                    "InvalidVolume.NotFound", f"The volume '{missing[0]}' does not exist."
                )
            items = [v for v in items if v.item["volumeId"] in ids]
        page, token = _page(_select(items, params, VOLUME_FILTERS), params, most=500)
        return {"volumeSet": [v.item for v in page], "nextToken": token}

    def describe_snapshots(self, params: dict[str, str]) -> dict[str, Any]:
        items = self.snapshots
        owners = _members(params, "Owner")
        if owners and not {"self", account.ACCOUNT_ID} & set(owners):
            items = []
        ids = _members(params, "SnapshotId")
        if ids:
            have = {s.item["snapshotId"] for s in self.snapshots}
            missing = [i for i in ids if i not in have]
            if missing:
                raise Ec2Error(
                    "InvalidSnapshot.NotFound", f"The snapshot '{missing[0]}' does not exist."
                )
            items = [s for s in items if s.item["snapshotId"] in ids]
        page, token = _page(_select(items, params, SNAPSHOT_FILTERS), params, most=1000)
        return {"snapshotSet": [s.item for s in page], "nextToken": token}


def _element(parent: ET.Element, key: str, value: Any) -> None:
    if value is None:
        return
    child = ET.SubElement(parent, key)
    if isinstance(value, list):
        for entry in value:
            _element(child, "item", entry)
    elif isinstance(value, dict):
        for k, v in value.items():
            _element(child, k, v)
    elif isinstance(value, bool):
        child.text = "true" if value else "false"
    elif isinstance(value, datetime):
        child.text = account.iso8601(value)
    else:
        child.text = str(value)


def _xml(action: str, data: dict[str, Any]) -> Response:
    root = ET.Element(f"{action}Response", {"xmlns": XMLNS})
    _element(root, "requestId", account.request_id())
    for key, value in data.items():
        _element(root, key, value)
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)
    return Response(status=200, body=body, headers={"Content-Type": "text/xml;charset=UTF-8"})


def _error(error: Ec2Error) -> Response:
    root = ET.Element("Response")
    inner = ET.SubElement(ET.SubElement(root, "Errors"), "Error")
    ET.SubElement(inner, "Code").text = error.code
    ET.SubElement(inner, "Message").text = error.message
    ET.SubElement(root, "RequestID").text = account.request_id()
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)
    return Response(
        status=error.status, body=body, headers={"Content-Type": "text/xml;charset=UTF-8"}
    )
