"""Label and field selectors, parsed as Kubernetes parses them, as predicates on object dicts.

A selector that does not parse, or a field the kind does not index, raises SelectorError; the
server answers it with 400 BadRequest, as the real API server does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]


class SelectorError(ValueError):
    """A selector that does not parse or names an unsupported field."""


_KEY = r"(?:[a-z0-9A-Z.\-]+/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_NOT_EXISTS = re.compile(rf"^!\s*({_KEY})$")
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\((.*)\)$")
_EQUALITY = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*({_VALUE})$")
_NUMERIC = re.compile(rf"^({_KEY})\s*([<>])\s*(-?\d+)$")
_EXISTS = re.compile(rf"^({_KEY})$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses (``a in (x,y),b`` is two requirements)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _set_values(text: str) -> frozenset[str]:
    values = frozenset(v.strip() for v in text.split(","))
    if not all(re.fullmatch(_VALUE, v) for v in values):
        raise SelectorError(f"unable to parse requirement: invalid value in ({text})")
    return values


_PARSERS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], tuple[str, str, Any]]], ...] = (
    (_NOT_EXISTS, lambda m: (m[1], "!", None)),
    (_SET, lambda m: (m[1], m[2], _set_values(m[3]))),
    (_EQUALITY, lambda m: (m[1], m[2], m[3])),
    (_NUMERIC, lambda m: (m[1], m[2], int(m[3]))),
    (_EXISTS, lambda m: (m[1], "exists", None)),
)
_OPS: dict[str, Callable[[dict[str, str], str, Any], bool]] = {
    "!": lambda labels, key, _: key not in labels,
    "exists": lambda labels, key, _: key in labels,
    "in": lambda labels, key, values: labels.get(key) in values,
    "notin": lambda labels, key, values: labels.get(key) not in values,
    "=": lambda labels, key, value: labels.get(key) == value,
    "==": lambda labels, key, value: labels.get(key) == value,
    "!=": lambda labels, key, value: labels.get(key) != value,
    ">": lambda labels, key, bound: _compare(labels.get(key), ">", bound),
    "<": lambda labels, key, bound: _compare(labels.get(key), "<", bound),
}


def _requirement(text: str) -> Callable[[dict[str, str]], bool]:
    text = text.strip()
    for pattern, parse in _PARSERS:
        if m := pattern.match(text):
            key, op, operand = parse(m)
            check = _OPS[op]
            return lambda labels: check(labels, key, operand)
    raise SelectorError(f"unable to parse requirement: found {text!r}, expected a requirement")


def _compare(value: str | None, op: str, bound: int) -> bool:
    try:
        number = int(value or "")
    except ValueError:
        return False
    return number > bound if op == ">" else number < bound


def label_predicate(text: str | None) -> Predicate:
    """A ``labelSelector`` query value as a predicate on objects (empty selects everything)."""
    if not text or not text.strip():
        return lambda obj: True
    requirements = [_requirement(part) for part in _split_top_level(text)]

    def matches(obj: Obj) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(req(labels) for req in requirements)

    return matches


def matches_label_selector(selector: Obj | None, labels: dict[str, str] | None) -> bool:
    """A LabelSelector object (matchLabels / matchExpressions) against a label map.

    As Kubernetes defines it for workloads: an empty selector selects everything.
    """
    labels = labels or {}
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op)
        if not ok:
            return False
    return True


def format_label_selector(selector: Obj | None) -> str:
    """A LabelSelector object as selector text (``app=x,tier in (a,b)``), like kubectl prints it."""
    if not selector:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(sorted(values))})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(sorted(values))})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) if parts else "<none>"


# -- field selectors -----------------------------------------------------------------------
def _get(obj: Obj, dotted: str) -> Any:
    value: Any = obj
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _flag(obj: Obj, dotted: str) -> str:
    return "true" if _get(obj, dotted) else "false"


_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
    ),
    "Node": ("spec.unschedulable",),
    "Event": (
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
    ),
    "Namespace": ("status.phase",),
    "ReplicaSet": ("status.replicas",),
    "PersistentVolumeClaim": (),
    "PersistentVolume": (),
}  # fmt: skip
_SPECIAL: dict[str, Callable[[Obj], str]] = {
    "spec.unschedulable": lambda o: _flag(o, "spec.unschedulable"),
    "spec.hostNetwork": lambda o: _flag(o, "spec.hostNetwork"),
    "source": lambda o: str(_get(o, "source.component") or ""),
    "status.replicas": lambda o: str(_get(o, "status.replicas") or 0),
}


def _field_value(obj: Obj, field: str) -> str:
    if field in _SPECIAL:
        return _SPECIAL[field](obj)
    value = _get(obj, field)
    return "" if value is None else str(value)


def supported_fields(kind: str) -> tuple[str, ...]:
    return _COMMON_FIELDS + _FIELDS.get(kind, ())


_FIELD_REQ = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$")


def field_predicate(text: str | None, kind: str, *, custom: bool = False) -> Predicate:
    """A ``fieldSelector`` query value for ``kind`` as a predicate on objects."""
    if not text or not text.strip():
        return lambda obj: True
    allowed = supported_fields(kind) if not custom else _COMMON_FIELDS
    requirements: list[tuple[str, bool, str]] = []
    for part in re.split(r"(?<!\\),", text):
        m = _FIELD_REQ.match(part)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m[1], m[2], m[3].replace("\\,", ",").replace("\\=", "=")
        if field not in allowed:
            if custom:
                raise SelectorError(
                    f'"{field}" is not a known field selector: only "metadata.name", '
                    '"metadata.namespace"'
                )
            raise SelectorError(f"field label not supported: {field}")
        requirements.append((field, op == "!=", value))

    def matches(obj: Obj) -> bool:
        return all((_field_value(obj, f) == v) != negate for f, negate, v in requirements)

    return matches
