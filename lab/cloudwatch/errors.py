"""The errors the CloudWatch Logs API answers with, as botocore reads them.

An ``ApiError`` becomes a 400 with ``{"__type": kind, "message": ...}`` plus any extra members
(``queryCompileError`` for MalformedQueryException); botocore raises it as
``client.exceptions.<kind>``.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, kind: str, message: str, *, status: int = 400, **extra: Any) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"__type": self.kind, "message": self.message, **self.extra}


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterException", message)


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFoundException", message)
