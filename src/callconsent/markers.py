"""Durable AstDB markers: work the dialplan wrote down for the app (a withdrawal pressed while the
app was away, a request from the withdrawal route), finished at the app's next AMI login.

Every marker lives under ``/<names.ASTDB_FAMILY>/<prefix>/<id>``; its handler finishes the work and
deletes the marker itself, so a marker that fails stays for the next login.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from callconsent import names
from callconsent.ami import AmiError

log = structlog.get_logger("callconsent.markers")


class MarkerAmi(Protocol):
    async def db_tree(self, family: str, key: str) -> list[tuple[str, str]]: ...


async def recover(
    ami: MarkerAmi,
    prefix: str,
    finish: Callable[[str, str], Awaitable[bool]],
    *,
    what: str,
) -> int:
    """Run ``finish(key, value)`` for every marker under ``prefix``; the number finished (True).

    ``what`` names the markers in the log: ``<what>_unreadable`` when AstDB cannot be read (nothing
    is done, the next login retries), ``<what>_recovered`` with the counts when any were found.
    """
    try:
        markers = await ami.db_tree(names.ASTDB_FAMILY, prefix.rstrip("/"))
    except AmiError as exc:
        log.error(f"{what}_unreadable", error=str(exc))
        return 0
    done = 0
    for key, value in markers:
        if await finish(key, value):
            done += 1
    if markers:
        log.info(f"{what}_recovered", markers=len(markers), finished=done)
    return done
