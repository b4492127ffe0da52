"""Benchmark the deterministic diagnosis: seconds and backend requests per scenario.

For each scenario, eval's own session brings the lab up and delivers the alerts through the
real Alertmanager once; the diagnosis eval would score is then repeated ``--repeat`` times,
each with a fresh Diagnoser so no cache hides a request. Lab start-up is not timed. The goal
(DESIGN.md: an answer while the alert is fresh) is a median under 2 s.

    .venv/bin/python bench/diagnose.py [--repeat 5] [--out bench/results] [SCENARIO ...]

Writes ``diagnose.json`` (every sample) and ``diagnose.md`` (the table) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot import logs
from lab import eval as lab_eval
from lab.scenario import loader

ROOT = Path(__file__).resolve().parent.parent
GOAL_MEDIAN_SECONDS = 2.0


def p95(samples: list[float]) -> float:
    """Nearest-rank 95th percentile (with 5 samples, the slowest)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def bench_file(path: Path, repeat: int) -> dict[str, Any]:
    """One scenario: ``repeat`` timed diagnoses against the same lab, or the error."""
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    result: dict[str, Any] = {"name": path.stem, "file": str(shown)}
    try:
        scenario = loader.load_file(path)
        result["name"] = scenario.name
        with lab_eval.session(scenario) as session:
            result["lab_seconds"] = round(session.lab_seconds, 3)
            if session.trigger is None:
                result["error"] = "nothing to diagnose (no firing alert, no question)"
                return result
            seconds: list[float] = []
            requests: list[int] = []
            for _ in range(repeat):
                diagnoser = session.diagnoser()
                started = time.perf_counter()
                diagnosis = diagnoser.diagnose(session.trigger)
                seconds.append(time.perf_counter() - started)
                requests.append(diagnosis.requests)
    except Exception as e:  # one broken scenario must not end the benchmark
        result["error"] = lab_eval.describe(e)
        return result
    result.update(
        trigger=session.trigger.kind,
        runbook=diagnosis.runbook,
        seconds=[round(s, 4) for s in seconds],
        median=round(statistics.median(seconds), 4),
        p95=round(p95(seconds), 4),
        requests=requests,
        requests_median=statistics.median(requests),
    )
    return result


def overall(results: list[dict[str, Any]]) -> dict[str, Any]:
    samples = [s for r in results for s in r.get("seconds", [])]
    medians = [r["median"] for r in results if "median" in r]
    out: dict[str, Any] = {
        "scenarios": len(results),
        "measured": len(medians),
        "errors": sum("error" in r for r in results),
        "goal_median_seconds": GOAL_MEDIAN_SECONDS,
    }
    if samples:
        out["median"] = round(statistics.median(samples), 4)
        out["p95"] = round(p95(samples), 4)
        out["worst_scenario_median"] = max(medians)
        out["goal_met"] = out["median"] < GOAL_MEDIAN_SECONDS
        out["requests_median"] = statistics.median(
            [n for r in results for n in r.get("requests", [])]
        )
    return out


def markdown(results: list[dict[str, Any]], total: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# Deterministic diagnosis benchmark",
        "",
        f"`{meta['command']}` — {meta['generated_at']}, {meta['machine']}, "
        f"{meta['repeat']} diagnoses per scenario against one lab (lab start-up not timed).",
        "",
        "| scenario | trigger | runbook | median s | p95 s | requests |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['name']} | - | - | - | - | error: {r['error']} |")
            continue
        lines.append(
            f"| {r['name']} | {r['trigger']} | {r['runbook'] or '-'} | {r['median']:.3f} "
            f"| {r['p95']:.3f} | {r['requests_median']:g} |"
        )
    if "median" in total:
        verdict = "met" if total["goal_met"] else "NOT met"
        lines += [
            "",
            f"Overall ({total['measured']} scenarios, every sample): median "
            f"{total['median']:.3f} s, p95 {total['p95']:.3f} s, "
            f"{total['requests_median']:g} backend requests per diagnosis (median). "
            f"Goal: median < {GOAL_MEDIAN_SECONDS:g} s — {verdict}.",
        ]
    if total["errors"]:
        lines.append(f"\n{total['errors']} scenario(s) could not be measured (see the table).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", type=Path, help="default: scenarios/*.yaml")
    parser.add_argument("--repeat", type=int, default=5, help="diagnoses per scenario")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    given = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(given)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    files = [p.resolve() for p in args.scenarios] or sorted((ROOT / "scenarios").glob("*.yaml"))
    logs.configure(level=os.environ.get("OPSBOT_LOG_LEVEL", "ERROR"), fmt="console")
    results = []
    for path in files:
        result = bench_file(path, args.repeat)
        results.append(result)
        shown = result.get("error") or f"median {result['median']:.3f}s p95 {result['p95']:.3f}s"
        print(f"{result['name']}: {shown}", file=sys.stderr)
    total = overall(results)
    meta = {
        "command": f"python bench/diagnose.py {' '.join(given)}" if given else "make bench",
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "repeat": args.repeat,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"meta": meta, "summary": total, "scenarios": results}
    (args.out / "diagnose.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(results, total, meta)
    (args.out / "diagnose.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
