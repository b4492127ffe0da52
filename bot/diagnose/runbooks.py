"""The runbooks: load them, validate them, pick the one a trigger calls for.

Each ``runbooks/<id>.md`` is YAML front matter between ``---`` lines and Markdown prose for the
on-call engineer. They are read once at start and validated strictly: a typo in a code, a tool
name or a regex must stop the start, not silently never match at 3 a.m. Every problem names the
file and the key, and all problems are reported at once.

Selection follows SCENARIOS.md: by alert name first (an alert name belongs to one runbook); by
log symptoms only when no alert name matches, trying runbooks in ``SYMPTOM_ORDER``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bot.diagnose import codes
from tools import catalog

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "runbooks"
"""``<repo>/runbooks``, found from this file so an editable install needs no package data."""

FRONT_MATTER_KEYS = ("id", "title", "alerts", "symptoms", "findings", "fixes", "tools")
NOT_RUNBOOKS = frozenset({"README.md"})
_ALERT_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")  # what Prometheus accepts as an alert name

SYMPTOM_ORDER: tuple[str, ...] = (
    "gpu-hardware-fault",  # a failing GPU causes CUDA, NCCL and crash lines in its pods
    "gpu-oom",  # a CUDA OOM explains the crash loop and the 5xx it causes
    "model-loading-failure",  # 401/403, unreachable store, unbound PVC, probe killing a load
    "karpenter-provisioning-failure",  # launch failures explain Pending pods
    "network-latency",  # NCCL, DNS and gateway timeouts
    "inference-latency-high",  # preemption messages
    "inference-error-rate-high",  # generic 5xx: delegates
    "model-pod-restarting",  # generic crash loop: delegates
    "gpu-underutilized",
    "cost",
)
"""The order ``for_symptoms`` tries runbooks in: the most specific cause first, so a line that
is a consequence (an NCCL timeout after an XID, a 502 after an OOM) does not win over its
cause. Runbooks missing from this tuple are tried after it, by id."""


class RunbookError(ValueError):
    """One or more runbooks are invalid; ``problems`` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid runbooks:\n" + "\n".join(f"  - {p}" for p in problems))


class Runbook(BaseModel):
    """One runbook: its front matter, validated, and its prose (``body``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str = Field(min_length=1)
    alerts: tuple[str, ...]
    symptoms: tuple[str, ...]
    findings: dict[str, str]
    fixes: tuple[str, ...]
    tools: tuple[str, ...]
    body: str = Field(min_length=1)
    _patterns: tuple[re.Pattern[str], ...] = PrivateAttr(default=())

    def model_post_init(self, context: Any, /) -> None:
        self._patterns = tuple(re.compile(s) for s in self.symptoms)

    @field_validator("id")
    @classmethod
    def _known_id(cls, value: str) -> str:
        if value not in codes.RUNBOOK_IDS:
            raise ValueError(f"{value!r} is not a runbook id of bot/diagnose/codes.py")
        return value

    @field_validator("alerts")
    @classmethod
    def _alert_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in value if not _ALERT_NAME.fullmatch(a)]
        if bad:
            raise ValueError(f"not valid alert names: {bad}")
        _no_duplicates(value)
        return value

    @field_validator("symptoms")
    @classmethod
    def _regexes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                compiled = re.compile(pattern)
            except re.error as e:
                raise ValueError(f"bad regex {pattern!r}: {e}") from None
            if compiled.search(""):
                raise ValueError(f"regex {pattern!r} matches the empty string, so every line")
        return value

    @field_validator("findings")
    @classmethod
    def _finding_codes(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        unknown = sorted(set(value) - codes.FINDING_CODES)
        if unknown:
            raise ValueError(f"not finding codes of bot/diagnose/codes.py: {unknown}")
        empty = sorted(code for code, meaning in value.items() if not meaning.strip())
        if empty:
            raise ValueError(f"codes without a meaning: {empty}")
        runbook = info.data.get("id")
        if runbook is None:  # the id is invalid and reported on its own
            return value
        foreign = sorted(code for code in value if not code.startswith(f"{runbook}/"))
        if foreign:
            raise ValueError(f"codes not prefixed by {runbook + '/'!r}: {foreign}")
        missing = sorted(
            c for c in codes.FINDING_CODES if c.startswith(f"{runbook}/") and c not in value
        )
        if missing:
            raise ValueError(f"codes of this runbook not documented: {missing}")
        return value

    @field_validator("fixes")
    @classmethod
    def _fix_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in value if f not in codes.FIX_CODES]
        if unknown:
            raise ValueError(f"not fix codes of bot/diagnose/codes.py: {unknown}")
        _no_duplicates(value)
        return value

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in value if t not in catalog.BY_NAME]
        if unknown:
            raise ValueError(f"not tools of tools/catalog.py: {unknown}")
        _no_duplicates(value)
        return value

    def first_match(self, texts: Iterable[str]) -> str | None:
        """The first of ``texts`` one of the symptoms matches (kept as evidence), or None."""
        for text in texts:
            if any(p.search(text) for p in self._patterns):
                return text
        return None


def _no_duplicates(values: tuple[str, ...]) -> None:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"listed twice: {repeated}")


def load(folder: Path | None = None) -> dict[str, Runbook]:
    """Every runbook of ``folder`` (default ``<repo>/runbooks``) by id, or ``RunbookError``."""
    folder = DEFAULT_FOLDER if folder is None else folder
    if not folder.is_dir():
        raise RunbookError([f"{folder}: not a folder (looked for the runbooks there)"])
    problems: list[str] = []
    runbooks: dict[str, Runbook] = {}
    files = sorted(p for p in folder.glob("*.md") if p.name not in NOT_RUNBOOKS)
    for path in files:
        try:
            runbook = _parse(path)
        except _Refused as e:
            problems.extend(e.problems)
        else:
            runbooks[runbook.id] = runbook
    owners: dict[str, str] = {}
    for runbook in sorted(runbooks.values(), key=lambda r: r.id):
        for alert in runbook.alerts:
            if alert in owners:
                problems.append(
                    f"{folder / (runbook.id + '.md')}: key 'alerts': {alert!r} is claimed by both "
                    f"{owners[alert]}.md and {runbook.id}.md (an alert name belongs to one runbook)"
                )
            else:
                owners[alert] = runbook.id
    stems = {p.stem for p in files}
    for missing in sorted(codes.RUNBOOK_IDS - stems):
        problems.append(f"{folder / (missing + '.md')}: key 'id': runbook {missing!r} has no file")
    if problems:
        raise RunbookError(problems)
    return runbooks


class _Refused(Exception):
    """A file's problems, each naming the file and the key; caught by ``load``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(*problems)


def _parse(path: Path) -> Runbook:
    """One file as a Runbook, or ``_Refused`` with every problem found in it."""
    meta, body = _front_matter(path)
    problems = [
        f"{path}: key {key!r}: unknown (allowed: {', '.join(FRONT_MATTER_KEYS)})"
        for key in sorted(set(meta) - set(FRONT_MATTER_KEYS), key=str)
    ]
    problems += [f"{path}: key {k!r}: missing" for k in FRONT_MATTER_KEYS if k not in meta]
    if "id" in meta and meta["id"] != path.stem:  # before the codes, which are checked by id
        problems.append(f"{path}: key 'id': {meta['id']!r} does not match the file name")
    if problems:
        raise _Refused(problems)
    try:
        return Runbook.model_validate({**meta, "body": body.strip()})
    except ValidationError as e:
        raise _Refused(_describe(path, e)) from None


def _front_matter(path: Path) -> tuple[dict[Any, Any], str]:
    try:
        text = path.read_text(encoding="utf-8").lstrip("\ufeff")
    except (OSError, UnicodeDecodeError) as e:
        raise _Refused([f"{path}: unreadable: {e}"]) from None
    parts = _split_front_matter(text)
    if parts is None:
        raise _Refused([f"{path}: key 'front matter': the file must open with it between '---'"])
    try:
        meta = yaml.safe_load(parts[0])
    except yaml.YAMLError as e:
        raise _Refused([f"{path}: key 'front matter': not valid YAML: {e}"]) from None
    if not isinstance(meta, dict):
        raise _Refused([f"{path}: key 'front matter': must be a mapping of keys"])
    return meta, parts[1]


def _split_front_matter(text: str) -> tuple[str, str] | None:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return None
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    return None


def _describe(path: Path, error: ValidationError) -> list[str]:
    lines = []
    for err in error.errors():
        key = err["loc"][0] if err["loc"] else "front matter"
        got = "" if err["type"] == "value_error" else f" (got {err.get('input')!r})"
        lines.append(f"{path}: key {key!r}: {err['msg'].removeprefix('Value error, ')}{got}")
    return lines


def for_alert(runbooks: Mapping[str, Runbook], alertname: str) -> Runbook | None:
    """The runbook whose ``alerts`` include ``alertname`` (exact, case-sensitive), or None."""
    for runbook in runbooks.values():
        if alertname in runbook.alerts:
            return runbook
    return None


def for_symptoms(runbooks: Mapping[str, Runbook], texts: Iterable[str]) -> Runbook | None:
    """The first runbook, in ``SYMPTOM_ORDER`` then by id, with a symptom matching any text."""
    lines = list(texts)
    rest = sorted(set(runbooks) - set(SYMPTOM_ORDER))
    for runbook_id in (*SYMPTOM_ORDER, *rest):
        runbook = runbooks.get(runbook_id)
        if runbook is not None and runbook.first_match(lines) is not None:
            return runbook
    return None


def select(
    runbooks: Mapping[str, Runbook], *, alertname: str | None = None, texts: Iterable[str] = ()
) -> Runbook | None:
    """SCENARIOS.md's rule: by alert name; by symptoms only when no alert name matches."""
    if alertname is not None:
        runbook = for_alert(runbooks, alertname)
        if runbook is not None:
            return runbook
    return for_symptoms(runbooks, texts)
