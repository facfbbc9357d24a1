"""After a restart: find the recorded calls in progress and watch them again (R1, R36).

While the app is down (killed, restarted, AMI lost) nothing hears the bridge, dial and hold
events of the calls it records: a transfer in that gap would go unnoticed, and after the restart
nothing would be watched until those calls end. So at every AMI login the app asks Asterisk for
every channel (``CoreShowChannels``: uniqueid, name, bridge), finds the ones whose sidecar says
they are still recording (the caller's uniqueid names the sidecar), adopts them in the store and
gives them and the bridges to the party tracker, which checks every party on them again
(:meth:`callconsent.parties.tracker.PartyTracker.recover`): an outside party alone with the
caller stops the recording at once; a later transfer outside stops it at the dial.

The Hold events of the gap are lost too: a call put on hold while the app was away would go on
being recorded (R2, § 263). So when it finds recorded calls the app also asks, for each of them,
whether the caller or a party in its bridge is held now (AMI ``Getvar`` of ``CHANNEL(onhold)``,
one channel at a time). Asterisk flags the held channel, the one it plays the hold music to:
when agent1's phone holds, it is the *caller's* channel. The party that holds is the other side
of that bridge (:func:`callconsent.parties.tracker.holding_parties`); the call is muted and its
pause listed, as at that party's Hold event, and its Unhold ends the pause. A call the process
before had muted (an open pause in its sidecar) whose hold ended in the gap is unmuted and its
pause ended: nothing holds or parks it any more. Device states
(``DeviceStateList``) cannot tell this: the held channel's device is the caller's endpoint or
trunk, which shows ``INUSE`` as soon as it has another call up.

Fail closed: when the listing fails, the app cannot tell whether any recorded call is still
inside the organisation, so it stops every recording whose sidecar (today's or yesterday's)
still says ``recording`` (AMI ``StopMixMonitor``; sidecar ``stop_reason: party_watch_lost``,
ledger ``recording_stopped``). A call that had ended meanwhile only gets that note. When a
channel's hold flag cannot be read, it cannot tell whether a recorded call is on hold: it stops
the recordings it found, with the same reason (a channel gone since the listing is not on hold).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

import structlog

from callconsent.ami import AmiError
from callconsent.clock import Clock, utc_now
from callconsent.evidence import paths, sidecar
from callconsent.evidence.paths import UNIQUEID_RE, find_recording
from callconsent.parties import hold
from callconsent.parties.adapter import PartyStore, PartyWatch
from callconsent.parties.tracker import holding_parties

log = structlog.get_logger("callconsent.parties.recover")

#: The sidecar's stop reason when the app could not tell who is on a recorded call.
WATCH_LOST: Final = "party_watch_lost"


class RecoverAmi(Protocol):
    async def core_show_channels(self) -> list[dict[str, str]]: ...
    async def channel_on_hold(self, channel: str) -> bool: ...
    async def stop_mixmonitor(self, channel: str) -> None: ...


class RecoverStore(PartyStore, Protocol):
    def adopt(self, uniqueid: str, where: paths.RecordingPaths) -> None: ...


async def recover(
    watch: PartyWatch,
    ami: RecoverAmi,
    store: RecoverStore,
    recordings_dir: Path,
    *,
    clock: Clock = utc_now,
) -> list[str]:
    """Watch the recorded calls in progress again; return their uniqueids."""
    try:
        channels = await ami.core_show_channels()
    except AmiError as exc:
        log.error("recover_listing_failed", error=str(exc))
        await _stop_all_live(ami, store, recordings_dir, clock())
        return []
    snapshot = [
        (c.get("Uniqueid", ""), c.get("Channel", ""), c.get("BridgeId", ""))
        for c in channels
        if _valid(c.get("Uniqueid", ""))
    ]
    callers: list[str] = []
    paused: set[str] = set()  # muted by the process before (an open pause in the sidecar)
    for uniqueid, _channel, _bridge in snapshot:
        if store.recording_live(uniqueid):
            callers.append(uniqueid)
            continue
        found = await asyncio.to_thread(_live_sidecar, recordings_dir, uniqueid)
        if found is not None:
            where, muted = found
            store.adopt(uniqueid, where)
            callers.append(uniqueid)
            if muted:
                paused.add(uniqueid)
    held: set[str] = set()
    if callers:
        try:
            held = holding_parties(snapshot, await _on_hold(ami, snapshot, callers))
        except AmiError as exc:  # on hold or not, nobody can tell: fail closed
            log.error("recover_hold_unknown", error=str(exc), calls=len(callers))
            await _stop_each(ami, store, callers, clock())
            return []
    watch.recover(snapshot, callers, held, paused)
    log.info(
        "recovered_calls",
        calls=len(callers),
        channels=len(snapshot),
        held=len(held),
        paused=len(paused),
    )
    return callers


async def _on_hold(
    ami: RecoverAmi, snapshot: list[tuple[str, str, str]], callers: list[str]
) -> set[str]:
    """The uniqueids of the callers and of the parties in their bridges that are held now."""
    bridges = {bridge for uniqueid, _c, bridge in snapshot if uniqueid in callers and bridge}
    out: set[str] = set()
    for uniqueid, _channel, bridge in snapshot:
        if uniqueid not in callers and bridge not in bridges:
            continue
        try:
            if await ami.channel_on_hold(uniqueid):
                out.add(uniqueid)
        except AmiError as exc:
            if not exc.channel_gone:  # a channel gone since the listing is not on hold
                raise
    return out


def _valid(uniqueid: str) -> bool:
    return bool(UNIQUEID_RE.fullmatch(uniqueid)) and ".." not in uniqueid


def _running(doc: dict[str, Any]) -> bool:
    return doc["state"] == sidecar.State.RECORDING and not doc["recording"].get("stop_reason")


def _live_sidecar(recordings_dir: Path, uniqueid: str) -> tuple[paths.RecordingPaths, bool] | None:
    """The recording of ``uniqueid`` if its sidecar says it is still recording, and whether it
    lists an open pause (muted)."""
    where = find_recording(recordings_dir, uniqueid)
    if where is None:
        return None
    try:
        doc = sidecar.load(where)
    except (OSError, ValueError):
        return None
    return (where, hold.paused(doc)) if _running(doc) else None


def _live_sidecars(recordings_dir: Path, now: datetime) -> list[str]:
    """Uniqueids of today's and yesterday's sidecars that still say ``recording``."""
    out: list[str] = []
    for day in (now, now - timedelta(days=1)):
        folder = recordings_dir / day.strftime("%Y/%m/%d")
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                doc = sidecar.load(path)
            except (OSError, ValueError):
                continue
            if _running(doc):
                out.append(str(doc["call"]["uniqueid"]))
    return out


async def _stop_all_live(
    ami: RecoverAmi, store: RecoverStore, recordings_dir: Path, at: datetime
) -> None:
    await _stop_each(ami, store, await asyncio.to_thread(_live_sidecars, recordings_dir, at), at)


async def _stop_each(
    ami: RecoverAmi, store: RecoverStore, uniqueids: list[str], at: datetime
) -> None:
    for uniqueid in uniqueids:
        try:
            await ami.stop_mixmonitor(uniqueid)  # first; fails harmlessly for an ended call
        except AmiError as exc:
            log.info("recover_stop_failed", call_id=uniqueid, error=str(exc))
        try:
            await store.stop_in_call(uniqueid, at, scope="all", reason=WATCH_LOST, party="external")
        except (OSError, ValueError) as exc:
            log.error("storage_error", action="stop_in_call", call_id=uniqueid, error=str(exc))
        log.warning("recording_stopped_watch_lost", call_id=uniqueid)
