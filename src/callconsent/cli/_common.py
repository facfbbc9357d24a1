"""What every ``callconsent`` subcommand shares, in one place: exit codes, the ``--config``
option and loading it, output (``--json`` or text), errors on stderr, progress, and the time
options (``--now``, ``--from``/``--to``, dates).

Exit codes: 0 success, 1 the job found problems (verify mismatches, items held back, overdue
holds), 2 bad config, bad usage or a refusal (the command did nothing it should not have).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, TextIO

from callconsent.clock import utc_now
from callconsent.config import Config, ConfigError, load_config
from callconsent.lifecycle.query import bound

EXIT_OK: Final = 0
EXIT_PROBLEMS: Final = 1
EXIT_USAGE: Final = 2

DEFAULT_CONFIG = Path("/etc/callconsent/callconsent.yaml")


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="the YAML config (default: %(default)s)",
    )


def load_or_exit(path: Path) -> Config:
    """The validated config, or every problem on stderr and exit 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def emit(args: argparse.Namespace, data: dict[str, Any] | list[Any], text: str) -> None:
    """The command's report on stdout: ``data`` as JSON with ``--json``, else ``text``."""
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else text)


def fail(message: object) -> int:
    """``error: <message>`` on stderr; the usage/refusal exit code (2)."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


class Progress:
    """Progress on stderr: a ``\\r`` counter on a terminal, a line every few seconds otherwise."""

    def __init__(self, stream: TextIO | None = None, every: float = 5.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.every = every
        self.last = -every

    def __call__(self, what: str, n: int) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write(f"\rindex: {n:>10,} {what}   ")
            self.stream.flush()
        elif now - self.last >= self.every:
            self.stream.write(f"index: {n:,} {what}\n")
            self.last = now

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")


def parse_now(text: str | None) -> datetime:
    """``--now``: an ISO 8601 time with a zone (UTC returned), or the clock when absent."""
    if text is None:
        return utc_now()
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"--now {text!r} needs a time zone, e.g. 2026-04-06T03:00:00Z")
    return moment.astimezone(UTC)


def parse_day(text: str) -> date:
    """A ``YYYY-MM-DD`` option value (argparse ``type=``)."""
    return date.fromisoformat(text)


def parse_bound(text: str | None, *, end: bool) -> str | None:
    """``--from``/``--to`` as a stamp (see :func:`callconsent.lifecycle.query.bound`)."""
    return bound(text, end=end)
