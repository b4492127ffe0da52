"""GPU memory high or CUDA out of memory (runbook ``gpu-oom``): which of five causes.

What tells them apart is what an SRE reads: *when* the CUDA OOM happened (before the weights
were loaded: the model does not fit; while serving: no headroom left by the KV-cache
reservation, the sequences, or a serving image's batch size), vLLM's own words about the KV
cache versus max-model-len, and — with no OOM at all — whether the framebuffer is simply flat at
the fraction vLLM reserves by design. The kernel's OOMKilled (exit 137, host memory) is not a
CUDA OOM and is left to ``model-loading-failure``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.diagnose.detectors import gpu_facts as facts
from bot.diagnose.investigation import Detector, Investigation, evidence
from bot.diagnose.model import Evidence, Finding, FixSuggestion
from bot.fixes import vllm
from tools.base import ToolResult

KV_PRESSURE = "gpu-oom/kv-cache-pressure"
BATCH = "gpu-oom/batch-too-large"
MODEL_SIZE = "gpu-oom/model-too-large"
CONTEXT = "gpu-oom/context-too-long"
PREALLOCATION = "gpu-oom/expected-preallocation"
CODES = frozenset({KV_PRESSURE, BATCH, MODEL_SIZE, CONTEXT, PREALLOCATION})

AGGRESSIVE_GPU_MEMORY = 0.95
"""gpu-memory-utilization at or above this leaves no room for allocations outside the budget."""
MANY_SEQS = 256
"""vLLM's default max-num-seqs on most GPUs; an explicit value above it is aggressive."""
KV_FULL = 0.95
FLAT_SPREAD = 0.03
"""Highest minus lowest used/(used+free) over the hour: a reservation does not move more."""
RESERVED_TOLERANCE = 0.05
HIGH_MEMORY = 0.88
"""Below this (and without a memory alert) nobody asked about memory: stay quiet."""

_OOM = re.compile(
    r"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory|cudaErrorMemoryAllocation"
)
_LOADED = re.compile(
    r"Model loading took|Loading weights took|Application startup complete|GPU KV cache size"
)
_LOADING = re.compile(
    r"Starting to load model|Loading (?:safetensors|pt) checkpoint shards|load_weights"
    r"|load_model|model_loader"
)
# vLLM's refusal to start: the V0 engine counts tokens, the V1 engine (0.8+) counts GiB.
_TOO_LONG = re.compile(
    r"max seq len \((?P<n>\d+)\) is larger than the maximum number of tokens that can be "
    r"stored in KV cache \((?P<m>\d+)\)"
    r"|max seq len \((?P<n1>\d+)\),? \(?[\d.]+ GiB KV cache is needed, which is larger than "
    r"the available KV cache memory"
)
_KV_TOKENS = re.compile(r"GPU KV cache size: (?P<t>[\d,]+) tokens")
_GREP = "|".join(p.pattern for p in (_OOM, _LOADED, _LOADING, _KV_TOKENS)) + "|max seq len"


@dataclass(frozen=True)
class _Line:
    result: ToolResult
    where: str
    text: str


@dataclass(frozen=True)
class _Oom:
    line: _Line
    during_load: bool | None
    """True before the weights finished loading, False while serving, None unknown."""


@dataclass
class _Logs:
    ooms: list[_Oom]
    too_long: list[_Line]
    kv_tokens: list[tuple[_Line, int]]
    results: list[ToolResult]
    """The logs actually read: no OOM seen in zero logs says nothing."""


def _scan(result: ToolResult, where: str, logs: _Logs) -> None:
    if result.status != "error":
        logs.results.append(result)
    text = str(facts.ok_obj(result).get("log") or "")
    loaded = loading = False
    for raw in text.splitlines():
        line = _Line(result, where, raw.strip())
        if _OOM.search(raw):
            state = False if loaded else (True if loading else None)
            logs.ooms.append(_Oom(line, state))
        if _TOO_LONG.search(raw):
            logs.too_long.append(line)
        if match := _KV_TOKENS.search(raw):
            logs.kv_tokens.append((line, int(match["t"].replace(",", ""))))
        loaded = loaded or bool(_LOADED.search(raw))
        loading = loading or bool(_LOADING.search(raw))


def _logs(inv: Investigation, w: facts.Workload, limit: int = 6) -> _Logs:
    """Current and (for restarted pods) previous logs of the workload's pods, OOM lines first."""
    out = _Logs([], [], [], [])
    for pod in w.pods[:limit]:
        name, ns = pod["name"], w.namespace
        current = inv.tool("pod_logs", namespace=ns, pod=name, tail_lines=5000, grep=_GREP)
        _scan(current, f"pod/{ns}/{name} logs", out)
        if pod.get("restarts") or pod.get("last_termination"):
            previous = inv.tool(
                "pod_logs", namespace=ns, pod=name, previous=True, tail_lines=5000, grep=_GREP
            )
            _scan(previous, f"pod/{ns}/{name} previous logs", out)
    return out


def _line_evidence(line: _Line) -> Evidence:
    text = line.text if len(line.text) <= 300 else line.text[:300] + " …"
    return evidence(line.result, text, where=line.where)


def _settings_text(s: facts.Settings) -> str:
    parts = [
        f"gpu-memory-utilization {s.gpu_memory_utilization or '(default 0.9)'}",
        f"max-num-seqs {s.max_num_seqs or '(default)'}",
        f"max-model-len {s.max_model_len or '(model default)'}",
        f"tensor-parallel-size {s.tensor_parallel}",
    ]
    if s.max_batch_size is not None:
        parts.append(f"MAX_BATCH_SIZE {s.max_batch_size}")
    return f"container {s.container}: " + ", ".join(parts)


def _config(w: facts.Workload, s: facts.Settings) -> list[Evidence]:
    return [evidence(w.describe, _settings_text(s), where=w.target)] if w.describe else []


def _weights(
    inv: Investigation, w: facts.Workload, s: facts.Settings
) -> tuple[float, float] | None:
    """(weights GB, GB of GPU memory the engine spans) from the name's size tag; None unknown."""
    params = vllm.parameters(s.model or "")
    node_of = {n["name"]: n for n in facts.nodes(inv)}
    gib = next(
        (g for p in w.pods if (g := facts.gpu_memory_gib(node_of.get(p.get("node"), {})))), None
    )
    if params is None or gib is None:
        return None
    weights = params * vllm.bytes_per_parameter(s.quantization, s.model or "", s.dtype) / 1e9
    gpus = max(w.gpus_per_pod, s.tensor_parallel * s.pipeline_parallel)
    return weights, gib * 1.073741824 * gpus


def _fix(code: str, w: facts.Workload, reason: str) -> FixSuggestion:
    return FixSuggestion(code=code, target=w.target, reason=reason)


def _too_big(sizes: tuple[float, float] | None) -> bool | None:
    """Weights over 90 % of the GPU memory the engine spans; None when either is unknown."""
    return None if sizes is None else sizes[0] > 0.9 * sizes[1]


def _model_too_large(
    w: facts.Workload, s: facts.Settings, ooms: list[_Oom], sizes: tuple[float, float] | None
) -> Finding | None:
    too_big = _too_big(sizes)
    loading = [o for o in ooms if o.during_load or (o.during_load is None and too_big)]
    if not loading:
        return None
    ev = [_line_evidence(loading[0].line), *_config(w, s)]
    size_text = ""
    if sizes is not None and w.describe is not None:
        size_text = f"~{sizes[0]:.0f} GB of weights for ~{sizes[1]:.0f} GB of GPU memory"
        ev.append(evidence(w.describe, f"{s.model}: {size_text}", where=w.target))
    confidence = 0.95 if loading[0].during_load and too_big else 0.85
    # Not enable-quantization: vLLM's online fp8 loads the bf16 weights before quantizing them,
    # so it cannot rescue weights that do not fit (a pre-quantized checkpoint is a model change).
    fixes = [_fix("increase-tensor-parallel", w, "spread the weights over more GPUs")]
    return Finding(
        code=MODEL_SIZE,
        summary=f"{w.name} runs out of GPU memory while loading its weights"
        + (f" ({size_text})" if size_text else "")
        + ": the model does not fit the GPUs at this precision and parallelism.",
        confidence=confidence if loading[0].during_load is not None else 0.75,
        evidence=ev,
        target=w.target,
        fixes=fixes,
    )


def _pressure(
    w: facts.Workload, engines: tuple[ToolResult, dict[str, dict[str, float]]]
) -> tuple[float | None, float | None, list[Evidence]]:
    """Peak KV-cache use and preemptions over 15 minutes across the workload's pods."""
    result, stats = engines
    names = [p["name"] for p in w.pods]
    kv = facts.pod_stat(stats, names, "kv_max")
    preempted = facts.pod_stat(stats, names, "preempted")
    ev = []
    if kv:
        ev.append(evidence(result, f"KV cache peak over 15m: {max(kv):.1%}", where=w.target))
    if preempted:
        ev.append(
            evidence(result, f"sequences preempted in 15m: {sum(preempted):.0f}", where=w.target)
        )
    return (max(kv) if kv else None), (sum(preempted) if preempted else None), ev


def _serving_oom(
    inv: Investigation,
    w: facts.Workload,
    s: facts.Settings,
    logs: _Logs,
    sizes: tuple[float, float] | None,
) -> list[Finding]:
    """A CUDA OOM while serving: the batch size of an image that reads it, or KV pressure.

    An OOM whose log shows no loading either way counts as serving when the weights fit.
    """
    fits = _too_big(sizes) is False
    serving = [o for o in logs.ooms if o.during_load is False or (o.during_load is None and fits)]
    kv, preempted, pressure_ev = _pressure(w, facts.engine_stats(inv, w.namespace, "15m"))
    full = (kv or 0) >= KV_FULL or (preempted or 0) > 0
    greedy_memory = (s.gpu_memory_utilization or 0) >= AGGRESSIVE_GPU_MEMORY
    many_seqs = (s.max_num_seqs or 0) > MANY_SEQS
    out = []
    if serving and s.max_batch_size is not None:
        out.append(
            Finding(
                code=BATCH,
                summary=f"{w.name} hit a CUDA OOM while serving with MAX_BATCH_SIZE "
                f"{s.max_batch_size}: the batch is too large for the GPU.",
                confidence=0.85,
                evidence=[_line_evidence(serving[0].line), *_config(w, s)],
                target=w.target,
                fixes=[_fix("reduce-batch-size", w, "halve MAX_BATCH_SIZE")],
            )
        )
    if serving and s.max_batch_size is None and (greedy_memory or many_seqs or full):
        confidence = 0.6 + 0.15 * (greedy_memory or many_seqs) + 0.15 * full
    elif (greedy_memory or many_seqs) and (kv or 0) >= KV_FULL and (preempted or 0) > 0:
        confidence = 0.6 if not serving else 0.75  # full and preempting, no OOM (yet)
    else:
        return out
    fixes = []
    if serving or greedy_memory:
        fixes.append(_fix("lower-gpu-memory-utilization", w, "leave headroom outside the KV cache"))
    if many_seqs or (full and (s.max_num_seqs or MANY_SEQS) >= MANY_SEQS):
        fixes.append(_fix("limit-max-num-seqs", w, "admit fewer sequences at once"))
    ev = [_line_evidence(serving[0].line)] if serving else []
    state = f"KV cache peak {kv:.0%}" if kv is not None else "KV cache use unknown"
    state += f", {preempted:.0f} preemptions in 15m" if preempted is not None else ""
    out.append(
        Finding(
            code=KV_PRESSURE,
            summary=f"{w.name} leaves no GPU memory headroom "
            f"({_settings_text(s).split(': ', 1)[1]}; {state})"
            + ("; a transient allocation hit a CUDA OOM while serving." if serving else "."),
            confidence=round(min(confidence, 0.95), 2),
            evidence=[*ev, *_config(w, s), *pressure_ev],
            target=w.target,
            fixes=fixes,
        )
    )
    return out


QUANTIZE_SHARE = 0.4
"""Weights above this share of the GPU memory: fp8 frees enough of it to matter for KV cache."""


def _context(
    w: facts.Workload, s: facts.Settings, logs: _Logs, sizes: tuple[float, float] | None
) -> Finding | None:
    fix = [_fix("limit-max-model-len", w, "fit the context to the KV cache")]
    wide = vllm.bytes_per_parameter(s.quantization, s.model or "", s.dtype) >= 2
    if wide and sizes is not None and QUANTIZE_SHARE * sizes[1] < sizes[0] <= 0.9 * sizes[1]:
        # The weights load (online fp8 needs that) and take much of the GPU: halving them
        # grows the KV cache while keeping the context length.
        fix.append(_fix("enable-quantization", w, "fp8 weights leave room for a longer KV cache"))
    if logs.too_long:
        return Finding(
            code=CONTEXT,
            summary=f"{w.name}'s max-model-len is larger than its KV cache can hold; vLLM "
            "refuses to start.",
            confidence=0.95,
            evidence=[_line_evidence(logs.too_long[0]), *_config(w, s)],
            target=w.target,
            fixes=fix,
        )
    if s.max_model_len and logs.kv_tokens:
        line, tokens = min(logs.kv_tokens, key=lambda t: t[1])
        if s.max_model_len > tokens:
            return Finding(
                code=CONTEXT,
                summary=f"{w.name} allows {s.max_model_len:,}-token contexts but its KV cache "
                f"holds {tokens:,} tokens.",
                confidence=0.8,
                evidence=[_line_evidence(line), *_config(w, s)],
                target=w.target,
                fixes=fix,
            )
    return None


def detect_oom(inv: Investigation) -> list[Finding]:
    """CUDA OOMs and vLLM's start-up refusals, per vLLM workload in scope."""
    found: list[Finding] = []
    for w in facts.workloads(inv):
        s = w.settings
        if s is None:
            continue
        logs = _logs(inv, w)
        sizes = _weights(inv, w, s)
        if too_large := _model_too_large(w, s, logs.ooms, sizes):
            found.append(too_large)
        found += _serving_oom(inv, w, s, logs, sizes)
        if context := _context(w, s, logs, sizes):
            found.append(context)
    return found


def _memory_alert(inv: Investigation) -> bool:
    return "memory" in (inv.trigger.alertname or "").lower()


def detect_preallocation(inv: Investigation) -> list[Finding]:
    """Framebuffer high but flat at vLLM's reserved fraction, no OOM, no preemption: noise."""
    works = [(w, w.settings) for w in facts.workloads(inv) if w.settings is not None and w.pods]
    if not works:
        return []
    ns = inv.subject.namespace
    gpu_result, gpus = facts.gpu_stats(inv, ns, "1h")
    engine_result, engines = facts.engine_stats(inv, ns, "1h")
    found: list[Finding] = []
    for w, s in works:
        names = [p["name"] for p in w.pods]
        mean, low, high = (facts.pod_stat(gpus, names, k) for k in ("mem", "mem_min", "mem_max"))
        if not mean or not low or not high:
            continue  # no DCGM data: nothing to say, and certainly not "all is well"
        top, spread = max(mean), max(high) - min(low)
        if abs(top - s.reserved) > RESERVED_TOLERANCE or spread > FLAT_SPREAD:
            continue
        if top < HIGH_MEMORY and not _memory_alert(inv):
            continue
        logs = _logs(inv, w)
        if logs.ooms or not logs.results:
            continue  # an OOM, or no log read at all: "no OOM" cannot be claimed
        preempted = facts.pod_stat(engines, names, "preempted")
        kv = facts.pod_stat(engines, names, "kv_max")
        if sum(preempted) > 0 or (kv and max(kv) >= KV_FULL):
            continue
        engine_text = (
            f"preemptions in 1h: {sum(preempted):.0f}" if preempted else "preemptions: no metric"
        )
        engine_text += f"; KV cache peak {max(kv):.1%}" if kv else "; KV cache: no metric"
        ev = [
            evidence(
                gpu_result,
                f"used/(used+free) over 1h: mean {top:.3f}, lowest {min(low):.3f}, "
                f"highest {max(high):.3f} (spread {spread:.3f})",
                where=w.target,
            ),
            *_config(w, s),
            evidence(engine_result, engine_text, where=w.target),
            evidence(
                logs.results[0],
                f"no CUDA OOM in {len(logs.results)} current/previous logs of its pods",
                where=w.target,
            ),
        ]
        verdict = (
            "the memory alert is noise for these GPUs."
            if _memory_alert(inv)
            else "high GPU memory here is expected, not a problem."
        )
        found.append(
            Finding(
                code=PREALLOCATION,
                summary=f"{w.name}'s GPU memory is flat at {top:.0%}, the {s.reserved:.2f} "
                f"vLLM reserves by design for weights and KV cache; no OOM, no preemption: "
                + verdict,
                confidence=0.85 if preempted else 0.7,
                evidence=ev,
                target=w.target,
            )
        )
    return found


DETECTORS: list[Detector] = [detect_oom, detect_preallocation]
