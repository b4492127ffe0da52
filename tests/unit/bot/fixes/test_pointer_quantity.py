"""The small JSON Pointer/Patch core behind inverses, and Kubernetes quantities."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import jsonpatch
import pytest

from bot.fixes import pointer, quantity

DOC: dict[str, Any] = {
    "spec": {"limits": {"nvidia.com/gpu": 64}, "items": ["a", "b"], "m~k": 1},
}


def test_escape_and_split_round_trip() -> None:
    path = pointer.join("spec", "limits", "nvidia.com/gpu")
    assert path == "/spec/limits/nvidia.com~1gpu"
    assert pointer.split(path) == ["spec", "limits", "nvidia.com/gpu"]
    assert pointer.join("m~k") == "/m~0k"
    assert pointer.resolve(DOC, "/spec/m~0k") == 1


@pytest.mark.parametrize(
    "ops",
    [
        [
            {"op": "test", "path": "/spec/limits/nvidia.com~1gpu", "value": 64},
            {"op": "replace", "path": "/spec/limits/nvidia.com~1gpu", "value": 96},
        ],
        [
            {"op": "add", "path": "/spec/items/-", "value": "c"},
            {"op": "add", "path": "/spec/items/0", "value": "z"},
        ],
        [{"op": "remove", "path": "/spec/items/0"}, {"op": "remove", "path": "/spec/m~0k"}],
        [
            {"op": "add", "path": "/spec/new", "value": {"x": [1]}},
            {"op": "add", "path": "/spec/limits/cpu", "value": "8"},
        ],
        [
            {"op": "add", "path": "/spec/limits/nvidia.com~1gpu", "value": 1}
        ],  # add over a member replaces it
    ],
)
def test_apply_matches_jsonpatch_and_inverse_restores(*, ops: list[dict[str, Any]]) -> None:
    doc = copy.deepcopy(DOC)
    assert pointer.apply(doc, ops) == jsonpatch.apply_patch(doc, ops)
    assert doc == DOC
    inverse = pointer.inverse(doc, ops)
    assert jsonpatch.apply_patch(jsonpatch.apply_patch(doc, ops), inverse) == DOC


def test_inverse_refuses_when_the_fixed_value_changed_since() -> None:
    ops = [
        {"op": "test", "path": "/spec/limits/nvidia.com~1gpu", "value": 64},
        {"op": "replace", "path": "/spec/limits/nvidia.com~1gpu", "value": 96},
    ]
    patched = jsonpatch.apply_patch(DOC, ops)
    patched["spec"]["limits"]["nvidia.com/gpu"] = 128  # someone raised it again meanwhile
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(patched, pointer.inverse(DOC, ops))


@pytest.mark.parametrize(
    ("op", "error"),
    [
        ({"op": "test", "path": "/spec/items/0", "value": "x"}, "test failed"),
        ({"op": "replace", "path": "/spec/nothing", "value": 1}, "no member"),
        ({"op": "add", "path": "/spec/items/9", "value": 1}, "out of range"),
        ({"op": "remove", "path": "/spec/items/01"}, "bad array index"),
        ({"op": "move", "path": "/spec/items/0", "from": "/spec/items/1"}, "unsupported"),
        ({"op": "add", "path": "", "value": 1}, "whole document"),
    ],
)
def test_apply_errors(*, op: dict[str, Any], error: str) -> None:
    with pytest.raises(pointer.PatchError, match=error):
        pointer.apply(DOC, [op])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("32Gi", Decimal(32 * 2**30)),
        ("1152Gi", Decimal(1152 * 2**30)),
        ("33554432Ki", Decimal(32 * 2**30)),
        ("500m", Decimal("0.5")),
        ("1e3", Decimal(1000)),
        ("1.5G", Decimal(1_500_000_000)),
        ("8", Decimal(8)),
        (8, Decimal(8)),
        ("0.5Gi", Decimal(2**29)),
    ],
)
def test_parse(*, text: str | int, value: Decimal) -> None:
    assert quantity.parse(text) == value


@pytest.mark.parametrize("bad", ["", "Gi", "12GB", "1.2.3", "ten"])
def test_parse_rejects(*, bad: str) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        quantity.parse(bad)


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (64 * 2**30, "64Gi"),
        (2 * 2**40, "2Ti"),
        (1536 * 2**20, "1536Mi"),
        (1000, "1000"),
        (3 * 2**10, "3Ki"),
    ],
)
def test_format_bytes(*, count: int, text: str) -> None:
    assert quantity.format_bytes(count) == text
    assert quantity.parse_int(text) == count
