"""DCGM GPU metrics through Prometheus: per GPU, per pod, and a fleet summary; XID codes explained.

Metric names and labels are dcgm-exporter's (``DCGM_FI_DEV_*``; ``gpu``, ``UUID``, ``modelName``,
``Hostname``, and ``namespace``/``pod``/``container`` for the pod using the GPU). Per-GPU numbers
come in one tagged query; the fleet summary is five aggregating queries (count, avg, quantile,
topk) sent at once, so its cost does not grow with the fleet. A metric Prometheus does not have
is named as absent: unknown, never zero.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

from tools import base, budget, promapi
from tools.toolbox import Toolbox

METRICS = {
    "util": "DCGM_FI_DEV_GPU_UTIL",
    "fb_used": "DCGM_FI_DEV_FB_USED",
    "fb_free": "DCGM_FI_DEV_FB_FREE",
    "temp": "DCGM_FI_DEV_GPU_TEMP",
    "power": "DCGM_FI_DEV_POWER_USAGE",
    "sm_clock": "DCGM_FI_DEV_SM_CLOCK",
    "xid": "DCGM_FI_DEV_XID_ERRORS",
    "ecc_dbe": "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
    "throttle": "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
}
"""Field -> dcgm-exporter metric. FB values are MiB; XID_ERRORS holds the last XID code."""
IDENTITY = ("Hostname", "gpu", "UUID", "modelName", "namespace", "pod", "container")
HOT_CELSIUS = 80
FULL_RATIO = 0.9
IDLE_PERCENT = 10


@dataclass(frozen=True)
class Xid:
    meaning: str
    cause: str
    """hardware, application or driver: a hardware XID is a reason to drain the node."""
    action: str


XIDS = {
    13: Xid("graphics engine exception", "application", "check the CUDA code; restart the pod"),
    31: Xid("GPU memory page fault (illegal address)", "application", "application bug; restart"),
    43: Xid("GPU stopped processing (application fault)", "application", "restart; GPU is fine"),
    45: Xid("preemptive cleanup after earlier errors", "application", "see the XID before it"),
    48: Xid("double-bit ECC error", "hardware", "drain the node, reset the GPU"),
    61: Xid("internal micro-controller breakpoint", "driver", "reset the GPU if it repeats"),
    62: Xid("internal micro-controller halt", "hardware", "drain the node, reset the GPU"),
    63: Xid("ECC page retirement / row remapping recorded", "hardware", "drain, reset to remap"),
    64: Xid("ECC page retirement / row remapping failed", "hardware", "drain, replace the GPU"),
    74: Xid("NVLink error", "hardware", "drain the node, check NVLink, reset"),
    79: Xid("GPU has fallen off the bus", "hardware", "cordon and drain the node, reboot"),
    92: Xid("high single-bit ECC error rate", "hardware", "plan a reset or replacement"),
    94: Xid("contained ECC error", "hardware", "restart the app; reset the GPU soon"),
    95: Xid("uncontained ECC error", "hardware", "drain the node, reset the GPU"),
    119: Xid("GSP RPC timeout (GPU firmware)", "driver", "reset the GPU or reboot the node"),
    120: Xid("GSP error (GPU firmware)", "driver", "reset the GPU or reboot the node"),
    140: Xid("unrecovered ECC error", "hardware", "drain the node, reset the GPU"),
}
"""Common XIDs, after NVIDIA's XID catalog; SCENARIOS.md's hardware/application split."""

THROTTLE_REASONS = (
    *("gpu_idle", "clocks_setting", "sw_power_cap", "hw_slowdown", "sync_boost"),
    *("sw_thermal", "hw_thermal", "hw_power_brake", "display_clocks"),
)
"""DCGM_CLOCKS_THROTTLE_REASON_* names, bit i of DCGM_FI_DEV_CLOCK_THROTTLE_REASONS each."""
BAD_THROTTLE = {"hw_slowdown", "sw_thermal", "hw_thermal", "hw_power_brake"}


def xid(code: int) -> Xid:
    """What an XID code means; unknown codes point to NVIDIA's catalog."""
    return XIDS.get(code, Xid(f"XID {code}: see NVIDIA's XID catalog", "unknown", "look it up"))


def throttle_reasons(mask: float | None) -> list[str]:
    if mask is None or math.isnan(mask):
        return []
    return [name for i, name in enumerate(THROTTLE_REASONS) if int(mask) & (1 << i)]


def gpu_metrics(
    *,
    box: Toolbox,
    cluster: str | None = None,
    node: str | None = None,
    pod: str | None = None,
    namespace: str | None = None,
    window: str = "15m",
) -> base.ToolResult:
    """Per GPU (and per pod using GPUs): utilisation, memory, heat, power, clocks, XID, ECC."""
    sel = promapi.matchers(Hostname=node, pod=pod, namespace=namespace)
    parts = {"util": f"avg_over_time({METRICS['util']}{sel}[{window}])"}
    parts |= {k: f"last_over_time({m}{sel}[{window}])" for k, m in METRICS.items() if k != "util"}
    parts["fb_earlier"] = f"last_over_time({METRICS['fb_used']}{sel}[{_earlier(window)}])"
    promql = promapi.tagged(parts)
    where = ", ".join(
        f"{k}={v}" for k, v in (("node", node), ("pod", pod), ("namespace", namespace)) if v
    )

    def fetch(remaining: float) -> base.Output:
        promapi.duration(window)
        c = promapi.client(box, cluster)
        result = promapi.instant(c, promql, deadline=time.monotonic() + remaining)
        found = promapi.split(promapi.samples(result))
        missing = promapi.absent(found, METRICS)
        gpus = _per_gpu(found, missing)
        if not gpus:
            text = f"no DCGM metrics for {where or 'any GPU'} in the last {window}: "
            text += f"absent {', '.join(missing)}"
            return base.Output(data={"gpus": [], "absent": missing}, text=text, no_data=True)
        return _render_gpus(gpus, missing, window, box.limits.max_chars)

    return promapi.run(box=box, cluster=cluster, tool="gpu_metrics", call=promql, fetch=fetch)


def _earlier(window: str) -> str:
    """A longer look-back, to tell a GPU that stopped reporting from one never seen."""
    try:
        return f"{max(4 * promapi.duration(window), 3600):.0f}s"
    except base.ToolError:
        return window  # fetch refuses the window before anything is sent


def _per_gpu(found: dict[str, list[promapi.Sample]], missing: list[str]) -> list[dict[str, Any]]:
    by_gpu: dict[tuple[str, ...], dict[str, Any]] = {}
    for field, rows in found.items():
        for labels, value in rows:
            key = tuple(labels.get(k, "") for k in IDENTITY)
            by_gpu.setdefault(key, dict(zip(IDENTITY, key, strict=True)))[field] = value
    reporting = {key[:3] for key, row in by_gpu.items() if "fb_used" in row}
    active = {key[:3] for key, row in by_gpu.items() if set(row) - {*IDENTITY, "fb_earlier"}}
    for key, row in list(by_gpu.items()):
        earlier = row.pop("fb_earlier", None)
        if len(row) == len(IDENTITY) and key[:3] in active:
            del by_gpu[key]  # an earlier pod's series on a GPU that reports under another now
        row["stopped_reporting"] = earlier is not None and key[:3] not in reporting
    for row in by_gpu.values():
        used, free = row.get("fb_used"), row.get("fb_free")
        row["mem_ratio"] = used / (used + free) if used is not None and free else None
        row["throttle_reasons"] = throttle_reasons(row.get("throttle"))
        if code := int(row.get("xid") or 0):
            row["xid_meaning"], row["xid_cause"] = xid(code).meaning, xid(code).cause
        row["problems"], row["severity"] = _problems(row, missing)
    gpus = sorted(
        by_gpu.values(), key=lambda r: (-r["severity"], r["Hostname"], _int(r["gpu"]), r["pod"])
    )
    return gpus


def _problems(row: dict[str, Any], missing: list[str]) -> tuple[list[str], int]:
    """What is wrong with one GPU, and how badly: 2 hardware, 1 worth a look, 0 fine."""
    found: list[tuple[str, int]] = []
    if code := int(row.get("xid") or 0):
        known = xid(code)
        severity = 2 if known.cause == "hardware" else 1
        found.append((f"XID {code} ({known.cause}): {known.meaning}; {known.action}", severity))
    if row.get("ecc_dbe"):
        found.append((f"{promapi.fmt(row['ecc_dbe'])} double-bit ECC errors since reset", 2))
    if bad := sorted(set(row["throttle_reasons"]) & BAD_THROTTLE):
        found.append((f"clocks throttled: {', '.join(bad)}", 1))
    if (row.get("temp") or 0) > HOT_CELSIUS:
        found.append((f"hot: {promapi.fmt(row['temp'])} C", 1))
    if row["stopped_reporting"]:
        found.append(("stopped reporting: no framebuffer data in the window, some before it", 1))
    return [text for text, _ in found], max((level for _, level in found), default=0)


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def _pct(value: float | None) -> str:
    return "-" if value is None else promapi.fmt(value, 3)


def _render_gpus(
    gpus: list[dict[str, Any]], missing: list[str], window: str, max_chars: int
) -> base.Output:
    nodes = len({g["Hostname"] for g in gpus})
    head = f"{len(gpus)} GPUs on {nodes} nodes (UTIL: mean over {window}; the rest: last value)"
    columns: dict[str, Callable[[dict[str, Any]], str]] = {
        "NODE": lambda g: g["Hostname"],
        "GPU": lambda g: g["gpu"],
        "POD": lambda g: f"{g['namespace']}/{g['pod']}" if g["pod"] else "-",
        "UTIL%": lambda g: _pct(g.get("util")),
        "FB USED MiB": lambda g: promapi.fmt(g.get("fb_used")),
        "FB FREE MiB": lambda g: promapi.fmt(g.get("fb_free")),
        "MEM%": lambda g: _pct(g["mem_ratio"] * 100 if g["mem_ratio"] is not None else None),
        "TEMP C": lambda g: promapi.fmt(g.get("temp")),
        "POWER W": lambda g: _pct(g.get("power")),
        "SM MHz": lambda g: promapi.fmt(g.get("sm_clock")),
        "XID": lambda g: promapi.fmt(g.get("xid")),
        "ECC DBE": lambda g: promapi.fmt(g.get("ecc_dbe")),
        "THROTTLE": lambda g: ",".join(g["throttle_reasons"]) or "-",
    }
    rows = [[show(g) for show in columns.values()] for g in gpus]
    headers = list(columns)
    table, cut = budget.fit_table(headers, rows, max_chars * 5 // 10, what="GPUs (problems first)")
    problems = [f"{g['Hostname']} gpu {g['gpu']}: {p}" for g in gpus for p in g["problems"]]
    noted, problem_cut = budget.fit_text("\n".join(problems), max_chars * 2 // 10)
    pods = _per_pod(gpus)
    pod_rows = [
        [p["pod"], p["container"], p["gpus"], _pct(p["util"]), promapi.fmt(p["fb_used"])]
        for p in pods
    ]
    pod_table, pod_cut = budget.fit_table(
        ["NAMESPACE/POD", "CONTAINER", "GPUS", "UTIL%", "FB USED MiB"],
        pod_rows,
        max_chars * 2 // 10,
        what="pods",
    )
    lines = [head, table]
    if problems:
        lines += ["Problems:", noted]
    if pods:
        lines += ["GPU use per pod:", pod_table]
    if missing:
        lines.append(f"not in Prometheus: {', '.join(missing)} (unknown, not zero)")
    data = {
        "window": window,
        "gpu_count": len(gpus),
        "gpus": gpus[: promapi.DATA_SERIES],
        "pods": pods[: promapi.DATA_SERIES],
        "absent": missing,
        "truncated": len(gpus) > promapi.DATA_SERIES,
    }
    cuts = "; ".join(c for c in (cut, problem_cut, pod_cut) if c) or None
    return base.Output(data=data, text="\n".join(lines), cut=cuts)


def _per_pod(gpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pods: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for g in gpus:
        if g["pod"]:
            pods.setdefault((f"{g['namespace']}/{g['pod']}", g["container"]), []).append(g)
    out = []
    for (pod, container), used in sorted(pods.items()):
        utils = [g["util"] for g in used if g.get("util") is not None]
        memory = [g["fb_used"] for g in used if g.get("fb_used") is not None]
        mean = sum(utils) / len(utils) if utils else None
        out.append({"pod": pod, "container": container, "gpus": len(used), "util": mean})
        out[-1]["fb_used"] = sum(memory) if memory else None
    return out


def _fleet_queries(w: str) -> dict[str, dict[str, str]]:
    """Aggregating queries by metric family: a fixed cost whatever the fleet's size.

    Prometheus evaluates every sub-expression again, so the parts are few (a maximum is the
    first of a top 5) and the memory ratio reads two series per GPU: used/(used+free) is
    1/(1 + free/used).
    """
    util = f"avg_over_time(DCGM_FI_DEV_GPU_UTIL[{w}])"
    free, used = (f"avg_over_time(DCGM_FI_DEV_FB_{m}[{w}])" for m in ("FREE", "USED"))
    ratio = f"1 / (1 + {free} / {used})"
    temp = f"max_over_time(DCGM_FI_DEV_GPU_TEMP[{w}])"
    power = f"avg_over_time(DCGM_FI_DEV_POWER_USAGE[{w}])"
    code = f"last_over_time(DCGM_FI_DEV_XID_ERRORS[{w}])"
    dbe = f"max_over_time(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[{w}])"
    return {
        "utilization": {
            "util_gpus": f"count({util})",
            "util_nodes": f"count(count by (Hostname) ({util}))",
            "util_mean": f"avg({util})",
            "util_idle": f"count({util} < {IDLE_PERCENT})",
            "idlest": f"bottomk(5, {util})",
        },
        "spread": {f"util_p{q}": f"quantile(0.{q}, {util})" for q in (10, 50, 90)},
        "memory": {
            "mem_mean": f"avg({ratio})",
            "mem_full": f"count({ratio} > {FULL_RATIO})",
            "fullest": f"topk(5, {ratio})",
        },
        "thermal": {
            "temp_gpus": f"count({temp})",
            "temp_hot": f"count({temp} > {HOT_CELSIUS})",
            "hottest": f"topk(5, {temp})",
            "power_mean": f"avg({power})",
            "power_total": f"sum({power})",
        },
        "errors": {
            "xid_gpus": f"count({code})",
            "xid_nonzero": f"count({code} != 0)",
            "xid_list": f"topk(10, {code} != 0)",
            "dbe_gpus": f"count({dbe})",
            "dbe_nonzero": f"count({dbe} > 0)",
            "dbe_list": f"topk(10, {dbe} > 0)",
        },
    }


FLEET_METRIC_OF = {
    "util_gpus": METRICS["util"],
    "mem_mean": f"{METRICS['fb_used']}/{METRICS['fb_free']}",
    "temp_gpus": METRICS["temp"],
    "power_mean": METRICS["power"],
    "xid_gpus": METRICS["xid"],
    "dbe_gpus": METRICS["ecc_dbe"],
}


def gpu_fleet_summary(
    *, box: Toolbox, cluster: str | None = None, window: str = "1h"
) -> base.ToolResult:
    """The whole fleet in five concurrent aggregating queries: spread, top 5s, XID/ECC errors."""
    promqls = [promapi.tagged(parts) for parts in _fleet_queries(window).values()]

    def fetch(remaining: float) -> base.Output:
        promapi.duration(window)
        deadline = time.monotonic() + remaining
        c = promapi.client(box, cluster)
        with futures.ThreadPoolExecutor(len(promqls), thread_name_prefix="fleet") as pool:
            results = list(pool.map(lambda q: promapi.instant(c, q, deadline=deadline), promqls))
        found: dict[str, list[promapi.Sample]] = {}
        for result in results:
            found |= promapi.split(promapi.samples(result))
        missing = promapi.absent(found, FLEET_METRIC_OF)
        if len(missing) == len(FLEET_METRIC_OF):
            text = f"no DCGM metrics in Prometheus over the last {window}: absent "
            return base.Output(
                data={"absent": missing}, text=text + ", ".join(missing), no_data=True
            )
        return _render_fleet(found, missing, window, box.limits.max_chars)

    call = "\n\n".join(promqls)
    return promapi.run(box=box, cluster=cluster, tool="gpu_fleet_summary", call=call, fetch=fetch)


def _render_fleet(
    found: dict[str, list[promapi.Sample]], missing: list[str], window: str, max_chars: int
) -> base.Output:
    def one(part: str, family: str | None = None) -> float | None:
        """A part's number; a count over nothing is 0 when its family's metric exists."""
        if rows := found.get(part):
            return rows[0][1]
        return 0.0 if family and found.get(family) else None

    def listed(part: str) -> list[dict[str, Any]]:
        rows = sorted(found.get(part, []), key=lambda s: s[1], reverse=part != "idlest")
        return [{**{k: lb.get(k, "") for k in IDENTITY}, "value": v} for lb, v in rows]

    u: dict[str, Any] = {
        k: one(f"util_{k}") for k in ("gpus", "nodes", "mean", "p10", "p50", "p90")
    }
    u |= {"idle_gpus": one("util_idle", "util_gpus"), "idlest": listed("idlest")}
    m: dict[str, Any] = {"mean": one("mem_mean"), "full_gpus": one("mem_full", "mem_mean")}
    m["fullest"] = listed("fullest")
    m["max"] = m["fullest"][0]["value"] if m["fullest"] else None
    t: dict[str, Any] = {"gpus": one("temp_gpus"), "hot_gpus": one("temp_hot", "temp_gpus")}
    t["hottest"] = listed("hottest")
    t["max"] = t["hottest"][0]["value"] if t["hottest"] else None
    pw = {k: one(f"power_{k}") for k in ("mean", "total")}
    x: dict[str, Any] = {"reporting": one("xid_gpus"), "nonzero": one("xid_nonzero", "xid_gpus")}
    x["gpus"] = [{**r, **_xid_fields(r["value"])} for r in listed("xid_list")]
    e: dict[str, Any] = {"reporting": one("dbe_gpus"), "nonzero": one("dbe_nonzero", "dbe_gpus")}
    e["gpus"] = listed("dbe_list")
    f = promapi.fmt
    lines = [
        f"GPU fleet over the last {window} (five aggregating queries, whatever its size):",
        _said(u["mean"], "Utilisation")
        or f"Utilisation: {f(u['gpus'])} GPUs on {f(u['nodes'])} nodes; mean per GPU: fleet mean "
        f"{_pct(u['mean'])}%, p10 {_pct(u['p10'])}%, median {_pct(u['p50'])}%, p90 "
        f"{_pct(u['p90'])}%; {f(u['idle_gpus'])} GPUs under {IDLE_PERCENT}%.",
        _said(m["mean"], "Memory")
        or f"Memory used/(used+free): mean {_ratio(m['mean'])}, highest {_ratio(m['max'])}; "
        f"{f(m['full_gpus'])} GPUs over {FULL_RATIO:.0%}.",
        _said(t["max"], "Temperature")
        or f"Temperature: max {f(t['max'])} C; {f(t['hot_gpus'])} GPUs over {HOT_CELSIUS} C.",
        _said(pw["mean"], "Power")
        or f"Power: mean {f(pw['mean'])} W per GPU, total {f(pw['total'])} W.",
        _said(x["reporting"], "XID")
        or f"XID: {f(x['nonzero'])} of {f(x['reporting'])} reporting GPUs have a non-zero XID.",
        _said(e["reporting"], "ECC double-bit errors")
        or f"ECC double-bit errors: on {f(e['nonzero'])} of {f(e['reporting'])} reporting GPUs.",
    ]
    cuts = []
    tables: list[tuple[str, str, list[dict[str, Any]], Callable[[dict[str, Any]], str]]] = [
        ("Idlest", "MEAN UTIL%", u["idlest"], lambda r: _pct(r["value"])),
        ("Fullest", "MEMORY USED", m["fullest"], lambda r: _ratio(r["value"])),
        ("Hottest", "MAX C", t["hottest"], lambda r: f(r["value"])),
        (
            "Non-zero XID",
            "XID",
            x["gpus"],
            lambda r: f"{f(r['value'])}: {r['meaning']} ({r['cause']})",
        ),
        ("ECC double-bit errors", "DBE", e["gpus"], lambda r: f(r["value"])),
    ]
    for title, header, rows, show in tables:
        if rows:
            cells = [[r["Hostname"], r["gpu"], r["pod"] or "-", show(r)] for r in rows]
            table, cut = budget.fit_table(["NODE", "GPU", "POD", header], cells, max_chars // 7)
            lines += [f"{title}:", table]
            cuts += [cut] if cut else []
    if missing:
        lines.append(f"not in Prometheus: {', '.join(missing)} (unknown, not zero)")
    data = {"window": window, "utilization": u, "memory": m, "temperature": t, "power": pw}
    data |= {"xid": x, "ecc_dbe": e, "absent": missing}
    return base.Output(data=data, text="\n".join(lines), cut="; ".join(cuts) or None)


def _said(value: float | None, what: str) -> str:
    """Nothing when there is a number to say; else that it is unknown, which is not zero."""
    return "" if value is not None else f"{what}: unknown (its metric is absent)."


def _xid_fields(code: float) -> dict[str, str]:
    known = xid(int(code))
    return {"meaning": known.meaning, "cause": known.cause}


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
