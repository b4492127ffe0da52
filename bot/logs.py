"""Structured JSON logs, with every event redacted before it is written.

Both our own structlog loggers and the standard library's (slack_sdk, urllib3, kubernetes)
go through the same processors, so a token in a library's debug line is masked too.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from tools import redact


def redact_event(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """structlog processor: redact every value of the event."""
    redacted: EventDict = redact.redact_data(dict(event))
    return redacted


def configure(*, level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Set up logging for the whole process; call once at start (the CLI does)."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_event,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *shared[:1],
            structlog.stdlib.filter_by_level,
            *shared[1:],
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for chatty in NOISY_LIBRARIES:  # their INFO lines (one per client built) bury ours
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))


NOISY_LIBRARIES = ("botocore", "boto3", "urllib3")


def get(name: str, **context: Any) -> Any:
    """A logger bound to ``context`` (structlog's BoundLogger)."""
    return structlog.stdlib.get_logger(name, **context)  # bound lazily: configure() may come later
