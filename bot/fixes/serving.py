"""Fixes to how vLLM serves: its engine settings and the env vars serving images read.

Each builder takes the PatchBuilder of a Deployment (or StatefulSet) and the context, writes
the change where the workload sets it (vllm.write), and returns a one-sentence summary.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from bot.fixes import quantity, vllm
from bot.fixes.builder import PatchBuilder, Refuse
from bot.fixes.model import FixContext
from bot.fixes.vllm import Container

GPU_MEMORY_TARGET = Decimal("0.85")
GPU_MEMORY_STEP = Decimal("0.05")
GPU_MEMORY_FLOOR = Decimal("0.5")
GPU_MEMORY_DEFAULT = Decimal("0.9")  # vLLM's own default
MAX_NUM_SEQS_TARGET = 128
MAX_MODEL_LEN_TARGET = 4096
NCCL_TIMEOUT_SECONDS = 1800
REQUEST_TIMEOUT_SECONDS = 300
WEIGHTS_SHARE_OF_GPU = 0.6


def _decimal(c: Container, what: str, value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation as e:
        raise Refuse(f"{c.label(what)} is {value!r}, not a number") from e


def _count(c: Container, what: str, value: str) -> int:
    """An integer setting; vLLM also reads ``32k`` (x1000) and ``32K`` (x1024)."""
    scale = {"k": 10**3, "K": 2**10, "m": 10**6, "M": 2**20}.get(value.strip()[-1:], 1)
    digits = value.strip()[:-1] if scale != 1 else value.strip()
    try:
        return int(Decimal(digits) * scale)
    except InvalidOperation as e:
        raise Refuse(f"{c.label(what)} is {value!r}, not a whole number") from e


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def lower_gpu_memory_utilization(b: PatchBuilder, ctx: FixContext) -> str:
    """0.85, or 0.05 lower when already at or under 0.85, never below 0.5."""
    changes: list[str] = []

    def change(c: Container) -> None:
        now = vllm.current(c, vllm.GPU_MEMORY_UTILIZATION)
        old = _decimal(c, "gpu-memory-utilization", now.value) if now.value else GPU_MEMORY_DEFAULT
        if old <= GPU_MEMORY_FLOOR:
            raise Refuse(f"{c.label('gpu-memory-utilization')} is {old}, already at the 0.5 floor")
        new = GPU_MEMORY_TARGET if old > GPU_MEMORY_TARGET else old - GPU_MEMORY_STEP
        new = max(new, GPU_MEMORY_FLOOR)
        vllm.write(b, c, vllm.GPU_MEMORY_UTILIZATION, now, _text(new))
        changes.append(f"{now.value or 'the default 0.9'} to {_text(new)}")

    b.each(vllm.vllm_containers(b.obj), change)
    return f"Lower vLLM's gpu-memory-utilization from {changes[0]} to leave GPU memory headroom."


def limit_max_num_seqs(b: PatchBuilder, ctx: FixContext) -> str:
    """128, or half when already at or under 128; 1 is the floor."""
    changes: list[str] = []

    def change(c: Container) -> None:
        now = vllm.current(c, vllm.MAX_NUM_SEQS)
        old = _count(c, "max-num-seqs", now.value) if now.value else None
        if old is not None and old <= 1:
            raise Refuse(f"{c.label('max-num-seqs')} is {old}; it cannot be lowered")
        new = MAX_NUM_SEQS_TARGET if old is None or old > MAX_NUM_SEQS_TARGET else old // 2
        vllm.write(b, c, vllm.MAX_NUM_SEQS, now, str(new))
        changes.append(f"{old if old is not None else 'the default'} to {new}")

    b.each(vllm.vllm_containers(b.obj), change)
    return f"Limit vLLM's max-num-seqs from {changes[0]} so fewer sequences share the KV cache."


def reduce_batch_size(b: PatchBuilder, ctx: FixContext) -> str:
    """MAX_BATCH_SIZE halved, not below 1, in the containers that set it."""
    setters = [c for c in vllm.containers(b.obj) if vllm.env_entry(c, "MAX_BATCH_SIZE")]
    if not setters:
        raise Refuse("no container sets MAX_BATCH_SIZE")
    changes: list[str] = []

    def change(c: Container) -> None:
        old = _count(c, "env.MAX_BATCH_SIZE", vllm.env_value(c, "MAX_BATCH_SIZE") or "")
        if old <= 1:
            raise Refuse(f"{c.label('env')}.MAX_BATCH_SIZE is {old}; it cannot be halved")
        vllm.set_env(b, c, "MAX_BATCH_SIZE", str(old // 2))
        changes.append(f"{old} to {old // 2}")

    b.each(setters, change)
    return f"Halve MAX_BATCH_SIZE from {changes[0]} so a batch fits the GPU."


def enable_quantization(b: PatchBuilder, ctx: FixContext) -> str:
    """quantization fp8, unless the model is already quantized (that needs a new checkpoint)."""

    def change(c: Container) -> None:
        now = vllm.current(c, vllm.QUANTIZATION)
        if now.value:
            raise Refuse(f"{c.label('quantization')} is already {now.value}")
        model = vllm.model_name(c) or ""
        if vllm.bytes_per_parameter(None, model, None) < 2:
            raise Refuse(f"model {model} is a quantized checkpoint already")
        vllm.write(b, c, vllm.QUANTIZATION, now, "fp8")

    b.each(vllm.vllm_containers(b.obj), change)
    return "Serve the model with fp8 quantization, halving the memory its weights take."


def limit_max_model_len(b: PatchBuilder, ctx: FixContext) -> str:
    """max-model-len 4096 when it is larger or unset (the model's own, usually larger, length)."""
    changes: list[str] = []

    def change(c: Container) -> None:
        now = vllm.current(c, vllm.MAX_MODEL_LEN)
        old = _count(c, "max-model-len", now.value) if now.value else None
        if old is not None and old <= MAX_MODEL_LEN_TARGET:
            raise Refuse(f"{c.label('max-model-len')} is {old}, already at most 4096")
        vllm.write(b, c, vllm.MAX_MODEL_LEN, now, str(MAX_MODEL_LEN_TARGET))
        changes.append(f"{old if old is not None else 'the model default'} to 4096")

    b.each(vllm.vllm_containers(b.obj), change)
    return f"Limit vLLM's max-model-len from {changes[0]} so the KV cache can hold a sequence."


def increase_tensor_parallel(b: PatchBuilder, ctx: FixContext) -> str:
    """Smallest power of two that puts ≤ 60 % of a GPU's memory of weights on each GPU."""
    node = ctx.node
    if node is None or not node.gpu_memory_gib or not node.gpus:
        raise Refuse("the node's GPU count and GPU memory are unknown")
    budget = WEIGHTS_SHARE_OF_GPU * node.gpu_memory_gib * 2**30
    gpus, instance = node.gpus, node.instance_type or "the node"
    changes: list[str] = []

    def change(c: Container) -> None:
        model = vllm.model_name(c)
        params = vllm.parameters(model) if model else None
        if model is None or params is None:
            raise Refuse(f"{c.label('model')}: no size tag (like 70B) in {model or 'no model'}")
        quant = vllm.current(c, vllm.QUANTIZATION).value
        weights = params * vllm.bytes_per_parameter(quant, model, vllm.current(c, vllm.DTYPE).value)
        size = 1
        while weights / size > budget:
            size *= 2
        now = vllm.current(c, vllm.TENSOR_PARALLEL_SIZE)
        old = _count(c, "tensor-parallel-size", now.value) if now.value else 1
        gib = weights / 2**30
        if size <= old:
            raise Refuse(f"{model} ({gib:.0f} GiB of weights) fits tensor-parallel-size {old}")
        if size > gpus:
            raise Refuse(
                f"{model} ({gib:.0f} GiB of weights) needs tensor-parallel-size {size}; "
                f"{instance} has {gpus} GPUs"
            )
        vllm.write(b, c, vllm.TENSOR_PARALLEL_SIZE, now, str(size))
        _gpus_at_least(b, c, size)
        changes.append(f"{old} to {size} ({gib:.0f} GiB of weights)")

    b.each(vllm.vllm_containers(b.obj), change)
    return f"Raise tensor-parallel-size from {changes[0]} and the GPUs requested to match."


def _gpus_at_least(b: PatchBuilder, c: Container, count: int) -> None:
    """Raise the container's nvidia.com/gpu request and limit (where set) to ``count``."""
    resources = c.spec.get("resources") or {}
    found = False
    for kind in ("limits", "requests"):
        old = (resources.get(kind) or {}).get("nvidia.com/gpu")
        if old is None:
            continue
        found = True
        if quantity.parse_int(old) < count:
            new = count if isinstance(old, int) else str(count)
            b.replace(c.path("resources", kind, "nvidia.com/gpu"), old, new)
            b.line(f"{c.label('resources')}.{kind}.nvidia.com/gpu: {old} → {new}")
    if not found:
        b.ensure_object(c.path("resources", "limits"), "nvidia.com/gpu", str(count))
        b.line(f"{c.label('resources')}.limits.nvidia.com/gpu: (unset) → {count}")


def _env_at_least(b: PatchBuilder, name: str, seconds: int) -> str:
    """Set env ``name`` to ``seconds`` where it is set lower, else on the vLLM containers."""
    setters = [c for c in vllm.containers(b.obj) if vllm.env_entry(c, name)]
    changes: list[str] = []

    def change(c: Container) -> None:
        raw = vllm.env_value(c, name)
        old = _count(c, f"env.{name}", raw) if raw else None
        if old is not None and old >= seconds:
            raise Refuse(f"{c.label('env')}.{name} is {old}, already at least {seconds}")
        vllm.set_env(b, c, name, str(seconds))
        changes.append(f"{old if old is not None else 'unset'} to {seconds}")

    b.each(setters or vllm.vllm_containers(b.obj), change)
    return changes[0]


def increase_nccl_timeout(b: PatchBuilder, ctx: FixContext) -> str:
    """NCCL_TIMEOUT 1800 s (serving images pass it to the process-group timeout)."""
    change = _env_at_least(b, "NCCL_TIMEOUT", NCCL_TIMEOUT_SECONDS)
    return f"Raise NCCL_TIMEOUT from {change} s so a slow collective is not killed at once."


def increase_request_timeout(b: PatchBuilder, ctx: FixContext) -> str:
    """REQUEST_TIMEOUT 300 s, where the serving container or proxy sets it."""
    change = _env_at_least(b, "REQUEST_TIMEOUT", REQUEST_TIMEOUT_SECONDS)
    return f"Raise REQUEST_TIMEOUT from {change} s so long answers finish before the timeout."
