"""PersistentVolumeClaims and, for Bound ones, their EBS-backed PersistentVolumes.

The PV's ``spec.csi.volumeHandle`` is a deterministic EBS volume id, so the AWS fake can serve
snapshots of "the volume behind inference/model-cache-pvc" without asking the store.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from lab.kube import naming
from lab.scenario import models

Obj = dict[str, Any]

CSI_DRIVER = "ebs.csi.aws.com"


def volume_id_for(namespace: str, name: str) -> str:
    """The EBS volume id of the PersistentVolume bound to PVC ``namespace/name``."""
    return naming.volume_id(namespace, name)


def volume_name(namespace: str, name: str) -> str:
    """``pvc-<claim uid>``, as the external provisioner names the volume it makes."""
    return f"pvc-{naming.uid('PersistentVolumeClaim', namespace, name)}"


def claim(p: models.Pvc, *, created: datetime) -> Obj:
    bound = p.phase == "Bound"
    spec: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": p.size}},
        "storageClassName": p.storage_class,
        "volumeMode": "Filesystem",
    }
    meta: Obj = {
        "name": p.name,
        "namespace": p.namespace,
        "uid": naming.uid("PersistentVolumeClaim", p.namespace, p.name),
        "creationTimestamp": naming.rfc3339(created),
        "finalizers": ["kubernetes.io/pvc-protection"],
    }
    if p.phase != "Pending":
        spec["volumeName"] = volume_name(p.namespace, p.name)
        meta["annotations"] = {
            "pv.kubernetes.io/bind-completed": "yes",
            "pv.kubernetes.io/bound-by-controller": "yes",
            "volume.beta.kubernetes.io/storage-provisioner": CSI_DRIVER,
            "volume.kubernetes.io/storage-provisioner": CSI_DRIVER,
        }
    status: Obj = {"phase": p.phase}
    if bound:
        status.update(accessModes=["ReadWriteOnce"], capacity={"storage": p.size})
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta,
        "spec": spec,
        "status": status,
    }


def volume(p: models.Pvc, stored_claim: Obj, *, zone: str, created: datetime) -> Obj:
    """The PersistentVolume bound to ``stored_claim`` (as the store returned it)."""
    name = volume_name(p.namespace, p.name)
    selector = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}
    provisioner = f"{int(created.timestamp() * 1000)}-{naming.hex_id('csi', length=4)}-{CSI_DRIVER}"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": name,
            "uid": naming.uid("PersistentVolume", None, name),
            "creationTimestamp": naming.rfc3339(created + timedelta(seconds=3)),
            "annotations": {"pv.kubernetes.io/provisioned-by": CSI_DRIVER},
            "finalizers": ["kubernetes.io/pv-protection", "external-attacher/ebs-csi-aws-com"],
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": p.size},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "name": p.name,
                "namespace": p.namespace,
                "uid": stored_claim["metadata"]["uid"],
                "resourceVersion": stored_claim["metadata"]["resourceVersion"],
            },
            "csi": {
                "driver": CSI_DRIVER,
                "fsType": "ext4",
                "volumeHandle": volume_id_for(p.namespace, p.name),
                "volumeAttributes": {"storage.kubernetes.io/csiProvisionerIdentity": provisioner},
            },
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [selector]}]}},
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": p.storage_class,
            "volumeMode": "Filesystem",
        },
        "status": {"phase": "Bound", "lastPhaseTransitionTime": naming.rfc3339(created)},
    }
