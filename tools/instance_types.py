"""EC2 instance types the bot and the lab know: CPU, memory, GPUs and EFA interfaces.

One table, because the lab builds nodes from it and the fix catalog sizes patches with it
(EFA counts, GPU memory for tensor parallelism, node memory for limits).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceType:
    """What one instance type offers."""

    name: str
    vcpu: int
    memory_gib: int
    gpus: int
    gpu_model: str | None
    gpu_memory_gib: int
    efa: int


_TABLE = (
    InstanceType("p4d.24xlarge", 96, 1152, 8, "NVIDIA A100-SXM4-40GB", 40, 4),
    InstanceType("p4de.24xlarge", 96, 1152, 8, "NVIDIA A100-SXM4-80GB", 80, 4),
    InstanceType("p5.48xlarge", 192, 2048, 8, "NVIDIA H100 80GB HBM3", 80, 32),
    InstanceType("g5.xlarge", 4, 16, 1, "NVIDIA A10G", 24, 0),
    InstanceType("g5.12xlarge", 48, 192, 4, "NVIDIA A10G", 24, 0),
    InstanceType("g6.xlarge", 4, 16, 1, "NVIDIA L4", 24, 0),
    InstanceType("g6e.xlarge", 4, 32, 1, "NVIDIA L40S", 48, 0),
    InstanceType("m5.2xlarge", 8, 32, 0, None, 0, 0),
    InstanceType("m5.4xlarge", 16, 64, 0, None, 0, 0),
    InstanceType("c5.2xlarge", 8, 16, 0, None, 0, 0),
)

INSTANCE_TYPES: dict[str, InstanceType] = {t.name: t for t in _TABLE}


def lookup(name: str) -> InstanceType | None:
    """The instance type called ``name``, or None when we do not know it."""
    return INSTANCE_TYPES.get(name)
