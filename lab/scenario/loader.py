"""Read scenario files into models; every problem is an error naming the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lab.scenario.models import Scenario


class ScenarioError(ValueError):
    """A scenario file that does not follow the format; ``problems`` are "key: what" lines."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {p}" for p in problems))


# libyaml's parser when available: large generated scenarios load several times faster.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses duplicate keys instead of keeping the last one silently."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=True)
    return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping_without_duplicates,
)


def load_file(path: Path | str) -> Scenario:
    """Load and validate one scenario file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(path, [f"cannot read: {e.strerror or e}"]) from e
    return load_text(text, source=path)


def load_text(text: str, *, source: Path | str = "<scenario>") -> Scenario:
    """Validate a scenario given as YAML text; ``source`` names it in errors."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ScenarioError(source, [_yaml_problem(e)]) from e
    if not isinstance(data, dict):
        raise ScenarioError(source, ["the top level must be a mapping with at least `name`"])
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(source, _describe(e, data)) from e


def _yaml_problem(error: yaml.YAMLError) -> str:
    """``line 2, column 1: duplicate key 'name'`` rather than PyYAML's multi-line dump."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}not valid YAML: {problem}"


def _describe(error: ValidationError, data: Any) -> list[str]:
    """One line per bad key, with the key written as a path (cluster.nodes[0].zone)."""
    lines: list[str] = []
    for item in error.errors():
        where = _key_path(item["loc"], data) or "(top level)"
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
        line = f"{where}: {message}"
        if line not in lines:
            lines.append(line)
    return lines


def _key_path(loc: tuple[Any, ...], data: Any) -> str:
    """The loc as a readable path; pydantic's own tags (union members) are skipped."""
    path = ""
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path += f"[{part}]"
            node = node[part]
        elif isinstance(node, dict) and part in node:
            path += f".{part}" if path else str(part)
            node = node[part]
        elif isinstance(node, dict) and i == len(loc) - 1:
            path += f".{part}" if path else str(part)  # a required key that is missing
    return path
