"""The parsed form of a Logs Insights query: expressions and the commands of a pipeline.

Plain data, no evaluation (that is ``insights``). ``Named.name`` is the column a result gets:
the ``as`` alias, else the expression as written (``count(*)``, ``bin(1h)``), as AWS names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from lab.cloudwatch.values import Period


# --- expressions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Const:
    value: Any


@dataclass(frozen=True)
class FieldRef:
    name: str


@dataclass(frozen=True)
class PeriodLit:
    period: Period


@dataclass(frozen=True)
class Call:
    name: str
    """Lower-cased function name."""
    args: tuple[Expr, ...]
    star: bool = False
    """``count(*)``."""


@dataclass(frozen=True)
class Unary:
    op: Literal["-", "not"]
    operand: Expr


@dataclass(frozen=True)
class Binary:
    op: str
    """Arithmetic (+ - * / % ^), comparison (= != < <= > >=) or boolean (and, or)."""
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Like:
    operand: Expr
    pattern: re.Pattern[str] | str
    """A regex (``like /re/``, ``=~ /re/``) or a substring (``like "text"``)."""
    negate: bool = False


@dataclass(frozen=True)
class In:
    operand: Expr
    items: tuple[Expr, ...]
    negate: bool = False


Expr = Const | FieldRef | PeriodLit | Call | Unary | Binary | Like | In


@dataclass(frozen=True)
class Named:
    name: str
    expr: Expr


# --- commands ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fields:
    items: tuple[Named, ...]


@dataclass(frozen=True)
class Display:
    names: tuple[str, ...]


@dataclass(frozen=True)
class Filter:
    condition: Expr


@dataclass(frozen=True)
class Stats:
    aggregates: tuple[Named, ...]
    by: tuple[Named, ...] = ()


@dataclass(frozen=True)
class SortKey:
    name: str
    descending: bool


@dataclass(frozen=True)
class Sort:
    keys: tuple[SortKey, ...]


@dataclass(frozen=True)
class Limit:
    count: int


@dataclass(frozen=True)
class Parse:
    source: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]
    """The fields the pattern fills ..."""
    groups: tuple[int | str, ...]
    """... each from this group (index or name) of the pattern."""


@dataclass(frozen=True)
class Dedup:
    names: tuple[str, ...]


Command = Fields | Display | Filter | Stats | Sort | Limit | Parse | Dedup


@dataclass(frozen=True)
class Query:
    commands: tuple[Command, ...]
    text: str = field(default="", compare=False)
