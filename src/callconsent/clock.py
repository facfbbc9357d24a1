"""The one place that reads the wall clock. Everything else takes a ``Clock`` so tests inject time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
