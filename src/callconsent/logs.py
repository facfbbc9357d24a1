"""Logging set-up: structlog, one JSON object per line on stderr.

Libraries that log through the standard library (aiohttp, panoramisk, asyncio) go through the
same processors and renderer, so every line on stderr has one format: a JSON object with
``event``, ``level``, ``timestamp`` and ``logger``.
"""

from __future__ import annotations

import logging
import re
import sys

import structlog

#: The handler this module puts on the root logger; replaced, never duplicated, on reconfigure.
_HANDLER_NAME = "callconsent"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (as structlog's own lines
    do after a reconfigure), not to the stream that was there at start-up."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


#: ``Secret: x`` / ``'Secret': 'x'`` in a library's line (panoramisk logs whole AMI actions, a
#: Login's password included, when a write fails or a connection closes with actions pending).
_SECRET = re.compile(r"""(secret['"]?\s*[:=]\s*['"]?)[^'",\s}]+""", re.IGNORECASE)


class _RedactSecrets(logging.Filter):
    """Masks secrets in the standard library's records (the libraries' lines) before they are
    formatted; the app's own lines never carry them."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "ecret" in text or "ECRET" in text:
            record.msg, record.args = _SECRET.sub(r"\1***", text), ()
        return True


def configure(level: str = "info", *, json: bool = True) -> None:
    """Configure structlog and the standard library's root logger once, at start-up (never at
    import)."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    numeric = logging.getLevelNamesMapping()[level.upper()]
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_RedactSecrets())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                timestamper,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
