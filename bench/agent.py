"""Benchmark the agent path: model calls and prompt size per diagnosis, and the fallback time.

Part 1, per public scenario with an ``llm_script``: eval's own session brings the lab up with the
scenario's scripted model, delivers the alerts through the real Alertmanager, and the agent
answers what eval would score. It reports the model calls (goal <= 4) and the largest single
prompt (goal <= 6,000 tokens, so an 8k-context model has room to answer), as the server's
``usage`` gave them to the agent, checked against the lab model's own count.

Part 2, for a few scenarios: the model fails and the runbook detectors answer alone. It measures
the seconds from the model's failure to the answer (goal < 5 s) for (a) connection refused (the
base URL on a closed port), (b) HTTP 503 from the model, (c) a model slower than its timeout.

    .venv/bin/python bench/agent.py [--repeat 3] [--timeout 2] [--out bench/results] [SCENARIO ...]

Writes ``agent.json`` (every sample) and ``agent.md`` (the tables) and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import logs

# Before the bot's modules are imported: they bind their module-level loggers as they load.
logs.configure(level=os.environ.get("OPSBOT_LOG_LEVEL", "CRITICAL"), fmt="console")

from bot.agent import Agent  # noqa: E402
from bot.diagnose import service  # noqa: E402
from lab import eval as lab_eval  # noqa: E402
from lab.httpserver import Fault  # noqa: E402
from lab.scenario import loader  # noqa: E402

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.diagnose.investigation import Investigation
    from bot.diagnose.model import Diagnosis, Trigger

ROOT = Path(__file__).resolve().parent.parent
GOAL_CALLS = 4
GOAL_PROMPT_TOKENS = 6000
GOAL_FALLBACK_SECONDS = 5.0
FALLBACK_SCENARIOS = (  # an alert, a question, an alert of another runbook
    "gpu-oom-kv-cache-pressure",
    "karpenter-spot-only-p5",
    "gpu-ecc-dbe-p4de-row-remap",
)
CASES = ("refused", "http-503", "slow")


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def bench_calls(path: Path) -> dict[str, Any]:
    """One scripted diagnosis: calls, prompt tokens (the agent's and the lab's), pass/fail."""
    result: dict[str, Any] = {"name": path.stem, "file": _shown(path)}
    try:
        scenario = loader.load_file(path)
        result["name"] = scenario.name
        with lab_eval.session(scenario, llm=lab_eval.Llm()) as s:
            if s.trigger is None:
                result["error"] = "nothing to diagnose (no firing alert, no question)"
                return result
            diagnoser = s.diagnoser()
            started = time.perf_counter()
            answer = s.agent(diagnoser).answer(s.trigger)
            seconds = time.perf_counter() - started
            checks = list(answer.diagnosis.checks)
            if scenario.expect.checks and not checks:
                checks = diagnoser.checks()
            entry = lab_eval.entry_for(
                scenario, answer.diagnosis, checks, seconds=seconds, lab_seconds=s.lab_seconds
            )
            entry = lab_eval.with_answer(entry, answer)
            assert s.lab.llm is not None
            lab_tokens = s.lab.llm.prompt_tokens()
    except Exception as e:  # one broken scenario must not end the benchmark
        result["error"] = lab_eval.describe(e)
        return result
    result.update(
        trigger=s.trigger.kind,
        runbook=entry.runbook,
        passed=entry.passed,
        failures=entry.failures,
        mode=entry.mode,
        script_turns=len(scenario.llm_script),
        llm_calls=entry.llm_calls,
        prompt_tokens=answer.prompt_tokens,
        prompt_tokens_lab=lab_tokens,
        prompt_tokens_total=entry.prompt_tokens,
        prompt_tokens_max=entry.prompt_tokens_max,
        model_findings=answer.model_findings,
        seconds=round(seconds, 3),
    )
    return result


class _TimedDiagnoser(service.Diagnoser):
    """Notes when the detectors finished: after that, only the model's part of the answer runs."""

    investigated_at: float | None = None

    def investigate(self, trigger: Trigger) -> tuple[Investigation, Diagnosis]:
        found = super().investigate(trigger)
        self.investigated_at = time.time()
        return found


def closed_port_url() -> str:
    """A base URL nothing listens on (a port just bound and released): connection refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def fallback_sample(s: lab_eval.Session, case: str, timeout: float) -> dict[str, Any]:
    """One answer with the model failing as ``case`` says; times in seconds.

    ``failure_to_answer`` starts at the model's first failure: for a refused connection when the
    detectors are done (the first connection attempt fails at once), for a 503 when the model
    server received the first request (it answers at once), for a slow model when the first
    request's timeout expired. ``after_last_timeout`` (slow only) starts when the last request's
    timeout expired.
    """
    assert s.lab.llm is not None and s.trigger is not None
    server = s.lab.llm.server
    settings: Settings = s.settings.model_copy(update={"llm_timeout_seconds": timeout})
    if case == "refused":
        settings = settings.model_copy(update={"llm_base_url": closed_port_url()})
    server.clear()
    server.fault = {"http-503": Fault(status=503), "slow": Fault(delay=timeout + 3.0)}.get(case)
    try:
        diagnoser = _TimedDiagnoser(settings, store=s.store)
        agent = Agent(settings, store=s.store, diagnoser=diagnoser)
        started = time.time()
        answer = agent.answer(s.trigger)
        ended = time.time()
    finally:
        server.fault = None
    requests = server.calls()
    assert diagnoser.investigated_at is not None
    if case == "refused" or not requests:
        failed_at = diagnoser.investigated_at
    elif case == "http-503":
        failed_at = requests[0].at
    else:
        failed_at = requests[0].at + timeout
    sample: dict[str, Any] = {
        "failure_to_answer": round(ended - failed_at, 3),
        "answer_seconds": round(ended - started, 3),
        "detectors_seconds": round(diagnoser.investigated_at - started, 3),
        "requests": [r.path for r in requests],
        "mode": answer.diagnosis.mode,
        "fallback": answer.fallback,
    }
    if case == "slow" and requests:
        sample["after_last_timeout"] = round(ended - (requests[-1].at + timeout), 3)
    return sample


def bench_fallback(path: Path, repeat: int, timeout: float) -> dict[str, Any]:
    """Every failure case ``repeat`` times against one lab."""
    result: dict[str, Any] = {"name": path.stem, "file": _shown(path), "cases": {}}
    try:
        scenario = loader.load_file(path)
        with lab_eval.session(scenario, llm=lab_eval.Llm()) as s:
            result["trigger"] = s.trigger.kind if s.trigger else None
            for case in CASES:
                samples = [fallback_sample(s, case, timeout) for _ in range(repeat)]
                worst = max(x["failure_to_answer"] for x in samples)
                result["cases"][case] = {
                    "samples": samples,
                    "median": round(statistics.median(x["failure_to_answer"] for x in samples), 3),
                    "max": worst,
                    "fell_back": all(x["mode"] == "rules" and x["fallback"] for x in samples),
                }
    except Exception as e:  # one broken scenario must not end the benchmark
        result["error"] = lab_eval.describe(e)
    return result


def overall(calls: list[dict[str, Any]], fallbacks: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [r for r in calls if "llm_calls" in r]
    worst_fallback = max(
        (c["max"] for r in fallbacks for c in r.get("cases", {}).values()), default=None
    )
    out: dict[str, Any] = {
        "scenarios": len(calls),
        "measured": len(measured),
        "errors": sum("error" in r for r in [*calls, *fallbacks]),
        "goal_calls": GOAL_CALLS,
        "goal_prompt_tokens": GOAL_PROMPT_TOKENS,
        "goal_fallback_seconds": GOAL_FALLBACK_SECONDS,
    }
    if measured:
        out["max_calls"] = max(r["llm_calls"] for r in measured)
        out["max_prompt_tokens"] = max(r["prompt_tokens_max"] for r in measured)
        out["passed"] = sum(r["passed"] for r in measured)
        out["counts_match_lab"] = all(
            r["prompt_tokens"] == r["prompt_tokens_lab"] for r in measured
        )
        out["goal_calls_met"] = out["max_calls"] <= GOAL_CALLS
        out["goal_prompt_met"] = out["max_prompt_tokens"] <= GOAL_PROMPT_TOKENS
    if worst_fallback is not None:
        out["max_fallback_seconds"] = worst_fallback
        out["goal_fallback_met"] = worst_fallback < GOAL_FALLBACK_SECONDS
        out["all_fell_back"] = all(
            c["fell_back"] for r in fallbacks for c in r.get("cases", {}).values()
        )
    return out


def _met(flag: bool) -> str:
    return "met" if flag else "NOT met"


def markdown(
    calls: list[dict[str, Any]],
    fallbacks: list[dict[str, Any]],
    total: dict[str, Any],
    meta: dict[str, Any],
) -> str:
    lines = [
        "# Agent benchmark",
        "",
        f"`{meta['command']}` — {meta['generated_at']}, {meta['machine']}. The lab's scripted "
        "model replays each scenario's `llm_script`; tokens are the server's `usage` "
        "(characters / 4), as the agent received them.",
        "",
        "## Model calls and prompt size per diagnosis",
        "",
        "| scenario | trigger | runbook | eval | LLM calls | largest prompt | all prompts | s |",
        "| --- | --- | --- | --- | ---: | ---: | --- | ---: |",
    ]
    for r in calls:
        if "error" in r:
            lines.append(f"| {r['name']} | - | - | error: {r['error']} | - | - | - | - |")
            continue
        tokens = ", ".join(f"{t:,}" for t in r["prompt_tokens"])
        lines.append(
            f"| {r['name']} | {r['trigger']} | {r['runbook'] or '-'} "
            f"| {'pass' if r['passed'] else 'FAIL'} | {r['llm_calls']} "
            f"| {r['prompt_tokens_max']:,} | {tokens} | {r['seconds']:.2f} |"
        )
    if "max_calls" in total:
        lines += [
            "",
            f"{total['measured']} scenarios, {total['passed']} pass eval: at most "
            f"{total['max_calls']} LLM calls per diagnosis (goal <= {GOAL_CALLS}: "
            f"{_met(total['goal_calls_met'])}), largest single prompt "
            f"{total['max_prompt_tokens']:,} tokens (goal <= {GOAL_PROMPT_TOKENS:,}: "
            f"{_met(total['goal_prompt_met'])}). The agent's counts "
            f"{'equal' if total['counts_match_lab'] else 'DIFFER from'} the lab model's own.",
        ]
    lines += [
        "",
        f"## Fallback: seconds from the model's failure to the answer "
        f"(llm_timeout_seconds {meta['timeout']:g}, {meta['repeat']} runs each)",
        "",
        "| scenario | case | median s | max s | after last timeout s | answer s "
        "| model requests | fell back |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in fallbacks:
        if "error" in r:
            lines.append(f"| {r['name']} | - | - | - | - | error: {r['error']} | - |")
            continue
        for case, c in r["cases"].items():
            last = c["samples"][-1]
            answer = statistics.median(x["answer_seconds"] for x in c["samples"])
            asked = ", ".join(last["requests"]) or "none (nothing listens)"
            after = [x["after_last_timeout"] for x in c["samples"] if "after_last_timeout" in x]
            last_timeout = f"{statistics.median(after):.2f}" if after else "-"
            lines.append(
                f"| {r['name']} | {case} | {c['median']:.2f} | {c['max']:.2f} | {last_timeout} "
                f"| {answer:.2f} | {asked} | {'yes' if c['fell_back'] else 'NO'} |"
            )
    if "max_fallback_seconds" in total:
        lines += [
            "",
            f"Worst: {total['max_fallback_seconds']:.2f} s (goal < {GOAL_FALLBACK_SECONDS:g} s: "
            f"{_met(total['goal_fallback_met'])}). A refused connection counts from the end of "
            "the detectors' work, a 503 from the model's first request, a slow model from the "
            "moment its first request timed out (a model that fails its context-window probe "
            "`/v1/models` is not asked to chat: one timeout, not two); `after last timeout` "
            "counts from the last request's timeout. `answer s` is the whole answer, detectors "
            "included.",
        ]
    if total["errors"]:
        lines.append(f"\n{total['errors']} measurement(s) failed (see the tables).")
    return "\n".join(lines) + "\n"


def scripted_files(given: list[Path]) -> list[Path]:
    """The given files, else the public scenarios that have an ``llm_script``."""
    if given:
        return [p.resolve() for p in given]
    return [
        p for p in sorted((ROOT / "scenarios").glob("*.yaml")) if "\nllm_script:" in p.read_text()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", type=Path, help="default: scripted scenarios/*")
    parser.add_argument("--repeat", type=int, default=3, help="runs per fallback case")
    parser.add_argument("--timeout", type=float, default=2.0, help="llm_timeout_seconds (slow)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    given = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(given)
    if args.repeat < 1 or args.timeout <= 0:
        parser.error("--repeat must be at least 1 and --timeout positive")
    files = scripted_files(args.scenarios)
    calls = []
    for path in files:
        result = bench_calls(path)
        calls.append(result)
        shown = result.get("error") or (
            f"{result['llm_calls']} calls, largest prompt {result['prompt_tokens_max']} tokens"
        )
        print(f"{result['name']}: {shown}", file=sys.stderr)
    by_name = {p.stem: p for p in files}
    chosen = [by_name[n] for n in FALLBACK_SCENARIOS if n in by_name] or files[:3]
    fallbacks = []
    for path in chosen:
        result = bench_fallback(path, args.repeat, args.timeout)
        fallbacks.append(result)
        worst = {case: c["max"] for case, c in result.get("cases", {}).items()}
        print(f"{result['name']} fallback: {result.get('error') or worst}", file=sys.stderr)
    total = overall(calls, fallbacks)
    meta = {
        "command": f"python bench/agent.py {' '.join(given)}" if given else "make bench",
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "repeat": args.repeat,
        "timeout": args.timeout,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"meta": meta, "summary": total, "scenarios": calls, "fallback": fallbacks}
    (args.out / "agent.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(calls, fallbacks, total, meta)
    (args.out / "agent.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
