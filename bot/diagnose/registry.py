"""Every detector module's detectors in one list, for the engine."""

from __future__ import annotations

from bot.diagnose.detectors import (
    cost,
    gpu_hardware,
    gpu_idle,
    gpu_memory,
    karpenter,
    latency,
    loading,
    network,
)
from bot.diagnose.investigation import Detector

MODULES = (gpu_memory, gpu_hardware, gpu_idle, latency, cost, loading, karpenter, network)
DETECTORS: tuple[Detector, ...] = tuple(d for m in MODULES for d in m.DETECTORS)
