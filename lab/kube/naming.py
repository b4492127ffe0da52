"""Deterministic names, ids, addresses and timestamps for the objects the lab builds.

Derived from the object's identity, never random, so a scenario builds the same cluster every
run (golden tests, and the AWS fake finding a PVC's volume id without asking the store).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

_SAFE = "bcdfghjklmnpqrstvwxz2456789"
"""The alphabet Kubernetes uses for generated name suffixes (no vowels, no 0/1/3)."""

_LAB = uuid.UUID("5d0c3f1e-6a8b-4c52-9a0e-2f6b7d1c4e90")
_NODE_IP = re.compile(r"^ip-(\d+)-(\d+)-(\d+)-(\d+)(?:\.|$)")


def digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode()).digest()


def hex_id(*parts: str, length: int = 16) -> str:
    return digest(*parts).hex()[:length]


def safe_string(*parts: str, length: int) -> str:
    """Like Kubernetes' rand.SafeEncodeString, but seeded by ``parts``."""
    return "".join(_SAFE[b % len(_SAFE)] for b in digest(*parts)[:length])


def uid(kind: str, namespace: str | None, name: str) -> str:
    return str(uuid.uuid5(_LAB, f"{kind}/{namespace or ''}/{name}"))


def template_hash(template: dict[str, Any]) -> str:
    """The pod-template-hash label of a pod template (10 safe characters)."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return safe_string("pod-template", text, length=10)


def instance_id(name: str) -> str:
    return f"i-0{hex_id('instance', name)}"


def volume_id(namespace: str, name: str) -> str:
    return f"vol-0{hex_id('volume', namespace, name)}"


def container_id(pod_uid: str, container: str, restarts: int) -> str:
    return f"containerd://{hex_id('container', pod_uid, container, str(restarts), length=64)}"


def image_id(image: str) -> str:
    """``docker.io/library/nginx@sha256:…`` as containerd reports a pulled image."""
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: len(repo) - len(last)] + last.split(":", 1)[0]
    first = repo.split("/", 1)[0]
    if "/" not in repo:
        repo = f"docker.io/library/{repo}"
    elif "." not in first and ":" not in first and first != "localhost":
        repo = f"docker.io/{repo}"
    return f"{repo}@sha256:{hex_id('image', image, length=64)}"


def node_ip(node_name: str) -> str:
    """The InternalIP EKS names a node after (``ip-10-1-1-10…``), else one derived from it."""
    match = _NODE_IP.match(node_name)
    if match and all(0 <= int(part) <= 255 for part in match.groups()):
        return ".".join(match.groups())
    d = digest("node-ip", node_name)
    return f"10.{d[0] % 64}.{d[1]}.{d[2] % 250 + 4}"


def pod_ip(host_ip: str, pod_name: str) -> str:
    """An address in the node's /16, as the VPC CNI hands out secondary IPs."""
    prefix = ipaddress.ip_address(host_ip).packed[:2]
    d = digest("pod-ip", pod_name)
    return f"{prefix[0]}.{prefix[1]}.{d[0]}.{d[1] % 250 + 4}"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def go_duration(seconds: int) -> str:
    """A duration as Go prints it: ``5m0s``, ``40s``, ``1h2m3s``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
