"""Where a flag lives in a container's command line, in the three shapes manifests use.

``["--flag", "v"]``, ``["--flag=v"]``, or one shell string (``bash -c "… vllm serve m --flag v"``).
Kubernetes runs ``command + args``; argparse keeps the last occurrence, so the last one is
the one that counts and the one a fix changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

VLLM_IMAGE = "vllm/vllm-openai"
_VLLM_RUN = re.compile(r"(?<![\w.-])vllm\s+serve\b|\bvllm\.entrypoints\b")
_VALUE = r"[^\s;&|]+"


@dataclass(frozen=True)
class Element:
    """One string of ``command`` or ``args``."""

    field: Literal["command", "args"]
    index: int
    text: str


@dataclass(frozen=True)
class FlagHit:
    """A flag found in the command line, with its value and where that value sits."""

    form: Literal["separate", "equals", "script"]
    flag: Element
    """The element holding the flag (for ``script``, the whole shell string)."""
    value_at: Element
    """The element holding the value (the same element unless ``separate``)."""
    value: str
    spelled: str
    """The flag as written (``--max_num_seqs``, ``-tp``)."""
    span: tuple[int, int] = (0, 0)
    """For ``script``: where the value sits in the string."""

    def rewritten(self, new: str) -> str:
        """The value element's new text when the value becomes ``new``."""
        if self.form == "separate":
            return new
        if self.form == "equals":
            return f"{self.spelled}={new}"
        start, end = self.span
        return self.flag.text[:start] + new + self.flag.text[end:]


def elements(container: Mapping[str, Any]) -> list[Element]:
    """``command`` then ``args``, as Kubernetes concatenates them."""
    out: list[Element] = []
    for field in ("command", "args"):
        values = container.get(field) or []
        if isinstance(values, list):
            out.extend(Element(field, i, str(v)) for i, v in enumerate(values))
    return out


def runs_vllm(container: Mapping[str, Any]) -> bool:
    """A vLLM container: its image is vLLM's, or its command line starts vLLM."""
    if VLLM_IMAGE in str(container.get("image") or ""):
        return True
    return _VLLM_RUN.search(" ".join(e.text for e in elements(container))) is not None


def spellings(flag: str, aliases: Sequence[str] = ()) -> list[str]:
    """``--max-num-seqs``, ``--max_num_seqs`` (vLLM's parser accepts both) and short aliases."""
    names = [flag, "--" + flag[2:].replace("-", "_")]
    return list(dict.fromkeys([*names, *aliases]))


def find_flag(container: Mapping[str, Any], names: Sequence[str]) -> FlagHit | None:
    """The last occurrence of any of ``names`` with its value, or None."""
    items = elements(container)
    found: FlagHit | None = None
    for pos, item in enumerate(items):
        hit = _hit_at(items, pos, item, names)
        if hit is not None:
            found = hit
    return found


def _hit_at(items: list[Element], pos: int, item: Element, names: Sequence[str]) -> FlagHit | None:
    for name in names:
        if item.text == name and pos + 1 < len(items):
            value = items[pos + 1]
            return FlagHit("separate", item, value, value.text, name)
        if item.text.startswith(name + "="):
            return FlagHit("equals", item, item, item.text[len(name) + 1 :], name)
    if not any(c.isspace() for c in item.text):
        return None
    last: FlagHit | None = None
    for match in _script_matches(item.text, names):
        span = match.span("value")
        last = FlagHit("script", item, item, match["value"], match["flag"], span)
    return last


def _script_matches(text: str, names: Sequence[str]) -> Iterator[re.Match[str]]:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pattern = rf"(?<![\w-])(?P<flag>{alternatives})(?:=|\s+)(?P<value>{_VALUE})"
    return re.finditer(pattern, text)


def positional_model(container: Mapping[str, Any]) -> str | None:
    """The model of ``vllm serve MODEL``, as tokens or inside a shell string."""
    items = elements(container)
    texts = [e.text for e in items]
    for i in range(len(texts) - 2):
        if texts[i].endswith("vllm") and texts[i + 1] == "serve":
            candidate = texts[i + 2]
            if not candidate.startswith("-"):
                return candidate
    for item in items:
        match = re.search(rf"(?<![\w.-])vllm\s+serve\s+(?P<model>(?!-){_VALUE})", item.text)
        if match:
            return match["model"]
    return None


@dataclass(frozen=True)
class Insertion:
    """Where an absent flag goes: into the shell string that runs vLLM, or onto ``args``."""

    script: Element | None
    new_text: str = ""


def insertion(container: Mapping[str, Any], flag: str, value: str) -> Insertion:
    """Place ``flag value`` right after vLLM's entry point (and model) in a shell string.

    Appending to a shell string would hand the flag to whatever runs after ``&&``; appending
    to ``args`` of a ``bash -c`` container would only set ``$1``.
    """
    for item in elements(container):
        if not any(c.isspace() for c in item.text):
            continue
        match = re.search(
            rf"(?<![\w.-])vllm\s+serve(?:\s+(?!-){_VALUE})?"
            rf"|\bvllm\.entrypoints(?:\.\w+)*",
            item.text,
        )
        if match:
            end = match.end()
            new_text = f"{item.text[:end]} {flag} {value}{item.text[end:]}"
            return Insertion(item, new_text)
    return Insertion(None)
