"""Kubernetes resource quantities (``400Gi``, ``1e3``, ``500m``, plain numbers).

Memory limits are compared and doubled in bytes, then written back the way a person would
(``800Gi``), so the diff reads like the manifest.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

_SUFFIXES: dict[str, Decimal] = {
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<exp>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?)$"
)
_BINARY_OUT = (
    ("Ei", 2**60),
    ("Pi", 2**50),
    ("Ti", 2**40),
    ("Gi", 2**30),
    ("Mi", 2**20),
    ("Ki", 2**10),
)


def parse(value: str | int | float) -> Decimal:
    """The quantity's value in base units (bytes, cores, devices); ValueError when malformed."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise ValueError(f"not a quantity: {value!r}")
    try:
        number = Decimal(match["num"])
        if match["exp"]:
            return number * (Decimal(10) ** int(match["exp"][1:]))
    except InvalidOperation as e:  # pragma: no cover - the regex admits only valid numbers
        raise ValueError(f"not a quantity: {value!r}") from e
    return number * _SUFFIXES[match["suffix"] or ""]


def parse_int(value: str | int | float) -> int:
    """Whole base units, rounded up as Kubernetes does for bytes and devices."""
    return int(parse(value).to_integral_value(rounding=ROUND_CEILING))


def format_bytes(count: int) -> str:
    """``count`` bytes in the largest binary unit that divides it exactly, else plain bytes."""
    for suffix, size in _BINARY_OUT:
        if count >= size and count % size == 0:
            return f"{count // size}{suffix}"
    return str(count)


def floor_mib(count: int) -> int:
    """``count`` rounded down to a whole MiB, so a capped limit reads cleanly and stays under."""
    return count - count % 2**20
