"""The objection adapter (Art 21, R30): hears an objection during the call and carries it out.

Three ways in, one way out:

* the agent's code ``*6`` (features.conf ``callconsent_object_agent``, enabled by the agent
  gosub on the agent's channel only): the caller objected orally; the dialplan raises
  ``UserEvent(CallconsentObjection, Caller: <uniqueid>, Agent: <agent id>, Via: agent_dtmf)``;
* the caller's code ``*3`` while bridged (``callconsent_object``, enabled by the hook on the
  caller's channel only): the same event with ``Via: caller_feature``;
* the route's objection digit pressed after the notice and before the bridge: the ARI adapter
  still hears the caller's keys (AMI's ``DTMFEnd``, :mod:`callconsent.stasis_ami`, or, while
  AMI does not report keys, its channel subscription) and hands them to
  :meth:`ObjectionHandler.on_late_digit` (``Via: caller_digit``); once bridged, a single digit is
  the caller talking to the agent (account numbers, ...) and counts for nothing.

The route's ``objection.action`` decides (rules: :mod:`callconsent.objection.rules`). Under
``do_not_record`` with nothing else recorded, AMI ``StopMixMonitor`` on the caller's channel
goes first (within 1 s), then the ledger ``objection`` entry and the tombstone. An AMI or
storage error is logged; the recording then ends at hangup at the latest. The code and the
digit need the app: while it is down they do nothing (the agent hears no confirmation).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol, cast

import structlog

from callconsent import names
from callconsent.ami import AmiError
from callconsent.clock import Clock, utc_now
from callconsent.config import Config, ObjectionSettings
from callconsent.evidence import paths, sidecar
from callconsent.evidence.paths import find_recording
from callconsent.objection import rules

log = structlog.get_logger("callconsent.objection")

_UNIQUEID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_AGENT_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ObjectionAmi(Protocol):
    async def stop_mixmonitor(self, channel: str) -> None: ...


class ObjectionStore(Protocol):
    async def change_in_call(
        self,
        uniqueid: str,
        at: datetime,
        *,
        change: Callable[[dict[str, Any] | None], rules.Objecting],
        entry: Callable[[rules.Objecting, paths.RecordingPaths], dict[str, Any]],
        tombstone_reason: str,
    ) -> rules.Objecting: ...


def route_settings(config: Config) -> dict[str, ObjectionSettings]:
    """The documentation objection settings of every enabled route that has them."""
    out: dict[str, ObjectionSettings] = {}
    for name, route in config.routes.items():
        purpose = route.purposes.get(rules.PURPOSE)
        if route.enabled and purpose is not None and purpose.objection is not None:
            out[name] = purpose.objection
    return out


class ObjectionHandler:
    def __init__(
        self,
        ami: ObjectionAmi,
        store: ObjectionStore,
        settings: Mapping[str, ObjectionSettings],
        recordings_dir: Path,
        *,
        bridged: Callable[[str], bool] = lambda _uniqueid: False,
        clock: Clock = utc_now,
    ) -> None:
        self._ami = ami
        self._store = store
        self._settings = dict(settings)
        self._recordings_dir = recordings_dir
        self._bridged = bridged
        self._clock = clock

    def variables(self, route: str, recorded: tuple[str, ...]) -> list[tuple[str, str]]:
        """The caller channel's variable that enables the codes (``__``: the agent gosub reads
        it too); empty unless documentation is recorded on a route that allows objection."""
        if rules.PURPOSE in recorded and route in self._settings:
            return [("__" + names.VAR_OBJECTABLE, "1")]
        return []

    async def on_objection_event(self, headers: dict[str, str]) -> None:
        """One ``CallconsentObjection`` UserEvent (AMI headers, any case)."""
        h = {k.lower(): v for k, v in headers.items()}
        caller, via, agent = h.get("caller", ""), h.get("via", ""), h.get("agent", "")
        if not _UNIQUEID_RE.fullmatch(caller) or via not in ("agent_dtmf", "caller_feature"):
            log.warning("objection_event_invalid", call_id=caller[:64])
            return
        agent_id = agent if via == "agent_dtmf" and _AGENT_RE.fullmatch(agent) else None
        await self.object(caller, cast(rules.Via, via), agent_id)

    async def on_late_digit(self, uniqueid: str, digit: str, route: str) -> None:
        """A key the caller pressed after the consent flow: the route's objection digit counts
        until the call is bridged."""
        settings = self._settings.get(route)
        if settings is None or settings.digit is None or digit != settings.digit:
            return
        if self._bridged(uniqueid):
            log.info("objection_digit_while_bridged_ignored", call_id=uniqueid)
            return
        await self.object(uniqueid, "caller_digit", None)

    async def object(self, uniqueid: str, via: rules.Via, agent_id: str | None) -> None:
        at = self._clock()
        bound = log.bind(call_id=uniqueid, via=via, agent=agent_id)
        try:
            doc = await asyncio.to_thread(self._sidecar, uniqueid)
        except (OSError, ValueError) as exc:
            bound.error("storage_error", action="objection", error=str(exc))
            return
        settings = self._settings.get(str(doc["call"].get("route", ""))) if doc else None
        if doc is None or settings is None:
            bound.warning("objection_not_applicable")
            return
        action, grounds = settings.action, settings.compelling_grounds_ref

        def change(current: dict[str, Any] | None) -> rules.Objecting:
            return rules.object_to(
                current, at=at, action=action, via=via, agent_id=agent_id, grounds_ref=grounds
            )

        if change(doc).stops_recording:  # first: the recording stops within 1 s
            try:
                await self._ami.stop_mixmonitor(uniqueid)
            except AmiError as exc:
                bound.warning("objection_stop_failed", error=str(exc))
        try:
            done = await self._store.change_in_call(
                uniqueid,
                at,
                change=change,
                entry=lambda done, where: rules.objection_entry(
                    uniqueid=uniqueid,
                    at=at,
                    done=done,
                    action=action,
                    via=via,
                    agent_id=agent_id,
                    recording=where.relative,
                ),
                tombstone_reason=rules.TOMBSTONE_REASON,
            )
        except (OSError, ValueError) as exc:
            bound.error("storage_error", action="objection", error=str(exc))
            return
        bound.info("objection", outcome=done.outcome, action=action)

    def _sidecar(self, uniqueid: str) -> dict[str, Any] | None:
        where = find_recording(self._recordings_dir, uniqueid)
        return sidecar.load(where) if where is not None else None
