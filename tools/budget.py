"""Fitting tool output into a budget, cutting what matters least and saying what was cut.

A model with an 8k context cannot read 50,000 log lines or 10,000 series, and neither can a
person in Slack. Logs keep the most relevant lines (errors first, then the newest); tables keep
the first rows (callers sort by importance) and count the rest; huge PromQL results become a
summary of label cardinality with the top values.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

CHARS_PER_TOKEN = 4

# Lines worth keeping when a log must be cut, most telling first.
_RELEVANCE = (
    (re.compile(r"Traceback|Error|ERROR|Exception|FATAL|CRITICAL|OOM|Killed|panic", re.I), 3),
    (re.compile(r"WARN|timeout|timed out|refused|denied|forbidden|failed|Xid", re.I), 2),
)


def fit_text(text: str, max_chars: int) -> tuple[str, str | None]:
    """``text`` cut at a line boundary to ``max_chars``, and a note of what was cut."""
    if len(text) <= max_chars:
        return text, None
    kept = text[: max(max_chars - 80, 0)]
    if "\n" in kept:
        kept = kept.rsplit("\n", 1)[0]
    omitted = len(text) - len(kept)
    note = f"output cut to the budget: {omitted:,} of {len(text):,} characters omitted"
    return f"{kept}\n… [{note}]", note


def _score(line: str) -> int:
    for pattern, score in _RELEVANCE:
        if pattern.search(line):
            return score
    return 0


def fit_lines(lines: Sequence[str], max_chars: int, *, tail: int = 20) -> tuple[str, str | None]:
    """Log lines within budget: the last ``tail`` lines, then the most relevant others, in order.

    Returns the text and a note such as "kept 120 of 50,000 lines (errors, warnings, the newest)".
    """
    text = "\n".join(lines)
    if len(text) <= max_chars:
        return text, None
    room = max_chars - 120
    chosen: set[int] = set()
    used = 0
    order = list(range(len(lines) - 1, max(len(lines) - 1 - tail, -1), -1))
    ranked = sorted(
        range(len(lines) - tail), key=lambda i: (-_score(lines[i]), -i)
    )  # most relevant, newest first
    for index in order + [i for i in ranked if _score(lines[i]) > 0]:
        size = min(len(lines[index]), 400) + 1
        if used + size > room:
            continue
        chosen.add(index)
        used += size
    kept = sorted(chosen)
    out: list[str] = []
    previous = -1
    for index in kept:
        if index != previous + 1:
            out.append(f"… ({index - previous - 1:,} lines omitted)")
        line = lines[index]
        out.append(line if len(line) <= 400 else line[:400] + " …")
        previous = index
    if previous < len(lines) - 1:
        out.append(f"… ({len(lines) - 1 - previous:,} lines omitted)")
    note = f"kept {len(kept):,} of {len(lines):,} lines (errors, warnings and the newest)"
    return "\n".join(out) + f"\n[{note}]", note


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, columns padded to their widest cell."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def fit_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], max_chars: int, *, what: str = "rows"
) -> tuple[str, str | None]:
    """As many rows as fit (callers put the important ones first), with a count of the rest."""
    text = table(headers, rows)
    if len(text) <= max_chars:
        return text, None
    low, high = 0, len(rows)
    while low < high:  # the most rows whose table fits, leaving room for the note
        mid = (low + high + 1) // 2
        if len(table(headers, rows[:mid])) <= max_chars - 80:
            low = mid
        else:
            high = mid - 1
    note = f"showing {low:,} of {len(rows):,} {what}"
    return f"{table(headers, rows[:low])}\n… and {len(rows) - low:,} more {what} [{note}]", note


def label_summary(series: Sequence[dict[str, str]], *, top: int = 5) -> str:
    """How many distinct values each label takes, with the commonest ones: a huge result's shape."""
    counts: dict[str, Counter[str]] = {}
    for labels in series:
        for key, value in labels.items():
            counts.setdefault(key, Counter())[value] += 1
    lines = [f"{len(series):,} series; labels (distinct values: commonest):"]
    for key in sorted(counts, key=lambda k: (len(counts[k]), k)):
        common = ", ".join(f"{v} ({n})" for v, n in counts[key].most_common(top))
        lines.append(f"  {key}: {len(counts[key]):,}: {common}")
    return "\n".join(lines)
