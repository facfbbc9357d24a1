"""Who takes part in a recorded call (R1, R15 at transfers): the rules, as a pure tracker.

A call may be recorded only while one of the organisation's own parties is on it, and a
consent purpose (training) only while every agent on it has consented. Transfers and forwards
change the parties after the first bridge: Asterisk moves the caller's channel (and its
MixMonitor, which records any later bridge with option ``b``) to whoever comes next.

This module is I/O-free. The adapter (:mod:`callconsent.parties.adapter`) feeds it Asterisk's AMI
events, translated to :meth:`PartyTracker.enter` (``BridgeEnter``), :meth:`PartyTracker.leave`
(``BridgeLeave``), :meth:`PartyTracker.dial` (``DialBegin``) and :meth:`PartyTracker.hangup`,
and carries out what comes back:

* :class:`StopAll` (reason ``org_left_call``): the caller's bridge holds other parties and none
  of them is internal (a blind or attended transfer to an outside number, the last agent left a
  three-way call), or the caller's channel dials an outside channel (a blind transfer or forward
  to an outside number: decided at the dial, before the outside party can answer);
* :class:`CheckAgent`: a party the call was not bridged with before joined the caller's bridge
  while an internal party stays on it: another agent (a transfer): its standing consent decides
  whether the consent purposes go on; an outsider (a three-way call): the consent purposes end
  (documentation goes on while the organisation is on the call).

:class:`~callconsent.parties.hold.Mute` / :class:`~callconsent.parties.hold.Unmute` (R2): the
caller's pause state changed: a party on its bridge (the caller included) holds or unholds
(AMI ``Hold``/``Unhold``, :meth:`PartyTracker.hold`), the caller is alone in a bridge, or in a
holding bridge such as a parking lot (rules: :mod:`callconsent.parties.hold`).

The first party the caller is bridged with is the agent whose consent the Queue member gosub
already decided (:mod:`callconsent.agents.bridge`): it is accepted without a second check.

A Local channel that is not itself internal stands for whoever is bridged with its other half
(an attended transfer reaches its target through one, and swaps it out once answered).

Internal parties are recognised by their channel's name without Asterisk's unique suffix
(``PJSIP/agent1-0000000a`` → ``PJSIP/agent1``, ``Local/agent@ctx-00000003;1`` →
``Local/agent@ctx``) matched against the configured shell-style patterns (``parties.internal``).
Anything else, including a channel name that cannot be read, is external: fail safe. An internal
party's agent id is its endpoint name (``PJSIP/agent2`` → ``agent2``; for ``Local/x@ctx``:
``x``), as queue members are named by their agent id.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Final, Literal

from callconsent.agents.rules import AGENT_ID_RE
from callconsent.parties.hold import Mute, Pause, Unmute, pause_for

ORG_LEFT_CALL: Final = "org_left_call"
#: AMI was away while the call recorded: a party change may have gone unseen (fail closed).
WATCH_LOST: Final = "watch_lost"
AGENT_NOT_CONSENTING: Final = "agent_not_consenting"
PARTY_NOT_CONSENTING: Final = "party_not_consenting"

_SUFFIX: Final = re.compile(r"^(?P<base>[^\s]+?)-[0-9a-fA-F]{8}(?:;[12])?$")
_TECH: Final = re.compile(r"^[A-Za-z][A-Za-z0-9]*/")

PartyKind = Literal["internal", "external"]


def channel_base(channel: str) -> str:
    """The channel's name without Asterisk's unique suffix (and a Local channel's ``;1/;2``)."""
    m = _SUFFIX.match(channel.strip())
    return m.group("base") if m else channel.strip()


def agent_id_of(channel: str) -> str | None:
    """The agent id of an internal channel: its endpoint name; None when it is not one."""
    base = channel_base(channel)
    if not _TECH.match(base):
        return None
    resource = base.split("/", 1)[1].split("@", 1)[0]
    return resource if AGENT_ID_RE.fullmatch(resource) else None


@dataclass(frozen=True, slots=True)
class Classifier:
    """``internal`` patterns, e.g. ``("PJSIP/agent*", "Local/*@agents")``."""

    internal: tuple[str, ...]

    def is_internal(self, channel: str) -> bool:
        base = channel_base(channel)
        return bool(_TECH.match(base)) and any(fnmatchcase(base, p) for p in self.internal)


@dataclass(frozen=True, slots=True)
class StopAll:
    """Stop every purpose of ``caller``'s recording: the organisation is no longer on the call."""

    caller: str
    party: PartyKind
    reason: str = ORG_LEFT_CALL


@dataclass(frozen=True, slots=True)
class CheckAgent:
    """A new party joined ``caller`` while an internal party stays on the call: an internal
    party's standing consent decides the consent purposes (``agent_id`` None: not an agent id,
    so no consent); an ``external`` one (a three-way call with an outsider) never consented."""

    caller: str
    channel: str
    agent_id: str | None
    external: bool = False


Decision = StopAll | CheckAgent | Mute | Unmute


@dataclass(slots=True)
class _Call:
    accepted: set[str] = field(default_factory=set)  # party uniqueids already decided
    bridged: bool = False  # the first party was seen
    stopped: bool = False  # StopAll was decided: nothing more to decide
    paused: bool = False  # a Mute was decided and no Unmute since (R2)


class PartyTracker:
    """Bridge membership of every channel, and the party decisions for the callers in them.

    ``enter``/``leave``/``dial`` return the decisions for the channels that :meth:`watch` made
    callers (the adapter watches the calls it records). Decisions are made once per party;
    after a :class:`StopAll` a caller gets no more decisions.
    """

    def __init__(self, classifier: Classifier) -> None:
        self._classifier = classifier
        self._bridges: dict[str, dict[str, str]] = {}  # bridge id -> {uniqueid: channel name}
        self._bridge_of: dict[str, str] = {}  # uniqueid -> bridge id
        self._calls: dict[str, _Call] = {}  # watched callers
        self._holders: dict[str, str] = {}  # uniqueid -> channel of every channel on hold
        self._holding_bridges: set[str] = set()  # parking lots and other holding bridges

    def watch(self, caller: str) -> list[Decision]:
        """Watch ``caller`` (idempotent); decides at once if it is already bridged."""
        self._calls.setdefault(caller, _Call())
        return self._decide(caller)

    def recover(
        self,
        snapshot: list[tuple[str, str, str]],
        callers: list[str],
        held: Collection[str] = (),
        paused: Collection[str] = (),
    ) -> list[Decision]:
        """After a restart (or an AMI reconnect) events were lost: learn the bridges from a
        channel listing (``(uniqueid, channel, bridge id or "")``) and watch ``callers`` again.
        Nobody on their calls counts as decided by the agent gosub any more: every party is
        checked again (an agent's standing consent, an outsider ends the consent purposes) and
        a caller with no internal party stops at once. ``held``: the channels that hold a call now,
        as an AMI ``Hold`` event names them (those events were lost too; see
        :func:`holding_parties`): a caller among them, or bridged with one, is muted.
        ``paused``: callers whose recording the process before muted (an open pause in the
        sidecar): unmuted when nothing holds or parks them any more (an Unhold in the gap)."""
        for uniqueid, channel, bridge in snapshot:
            if uniqueid in held:
                self._holders[uniqueid] = channel
            if bridge and self._bridge_of.get(uniqueid) != bridge:
                old = self._bridge_of.get(uniqueid)
                if old is not None:
                    self._remove(old, uniqueid)
                self._bridges.setdefault(bridge, {})[uniqueid] = channel
                self._bridge_of[uniqueid] = bridge
        out: list[Decision] = []
        for caller in callers:
            call = self._calls.setdefault(caller, _Call())
            call.paused = call.paused or caller in paused
            call.bridged = True
            out += self._decide(caller)
        return out

    def watching(self, caller: str) -> bool:
        return caller in self._calls

    def enter(
        self, bridge: str, uniqueid: str, channel: str, *, holding: bool = False
    ) -> list[Decision]:
        """``uniqueid`` entered ``bridge`` (``holding``: a parking lot or other holding bridge,
        whose members do not talk with each other)."""
        if holding:
            self._holding_bridges.add(bridge)
        old = self._bridge_of.get(uniqueid)
        if old is not None and old != bridge:
            self._remove(old, uniqueid)
        self._bridges.setdefault(bridge, {})[uniqueid] = channel
        self._bridge_of[uniqueid] = bridge
        return self._decide_bridge(bridge)

    def leave(self, bridge: str, uniqueid: str) -> list[Decision]:
        self._remove(bridge, uniqueid)
        return self._decide_bridge(bridge)

    def dial(self, uniqueid: str, dest_channel: str) -> list[Decision]:
        """``uniqueid``'s channel dials ``dest_channel`` (before it answers)."""
        call = self._calls.get(uniqueid)
        if call is None or call.stopped or self._classifier.is_internal(dest_channel):
            return []
        call.stopped = True
        return [StopAll(uniqueid, "external")]

    def hold(self, uniqueid: str, channel: str) -> list[Decision]:
        """``uniqueid``'s channel put the call on hold (any party, the caller included)."""
        self._holders[uniqueid] = channel
        return self._decide_around(uniqueid)

    def unhold(self, uniqueid: str) -> list[Decision]:
        self._holders.pop(uniqueid, None)
        return self._decide_around(uniqueid)

    def pause_of(self, caller: str) -> Pause | None:
        """The pause ``caller`` is in now (None: in a conversation, or not in a bridge)."""
        bridge = self._bridge_of.get(caller)
        if bridge is None:
            return None
        return pause_for(
            caller,
            self._bridges.get(bridge, {}),
            self._holders,
            holding_bridge=bridge in self._holding_bridges,
            is_internal=self._classifier.is_internal,
            agent_id_of=agent_id_of,
        )

    def hangup(self, uniqueid: str) -> None:
        self._holders.pop(uniqueid, None)
        bridge = self._bridge_of.get(uniqueid)
        if bridge is not None:
            self._remove(bridge, uniqueid)
        self._calls.pop(uniqueid, None)

    def in_bridge(self, uniqueid: str) -> bool:
        """In a bridge now, a holding bridge (parking) aside."""
        bridge = self._bridge_of.get(uniqueid)
        return bridge is not None and bridge not in self._holding_bridges

    def members(self, bridge: str) -> dict[str, str]:
        return dict(self._bridges.get(bridge, {}))

    # -- internals ----------------------------------------------------------------------
    def _remove(self, bridge: str, uniqueid: str) -> None:
        members = self._bridges.get(bridge)
        if members is not None:
            members.pop(uniqueid, None)
            if not members:
                del self._bridges[bridge]
                self._holding_bridges.discard(bridge)
        if self._bridge_of.get(uniqueid) == bridge:
            del self._bridge_of[uniqueid]

    def _through_local(self, others: dict[str, str]) -> dict[str, str]:
        """Who is really on the call: a Local channel half that is not itself internal stands
        for the parties bridged with its other half (an attended transfer dials through a Local
        channel and swaps it for the target later). A half whose partner is not bridged stays
        as it is: external (fail safe)."""
        out: dict[str, str] = {}
        for uniqueid, channel in others.items():
            partner = _local_partner(channel)
            if partner is None or self._classifier.is_internal(channel):
                out[uniqueid] = channel
                continue
            behind = self._bridged_with(partner)
            out.update(behind if behind else {uniqueid: channel})
        return out

    def _bridged_with(self, channel: str) -> dict[str, str]:
        for members in self._bridges.values():
            if channel in members.values():
                return {u: c for u, c in members.items() if c != channel}
        return {}

    def _decide_bridge(self, bridge: str) -> list[Decision]:
        out: list[Decision] = []
        for uniqueid in list(self._bridges.get(bridge, {})):
            out.extend(self._decide(uniqueid))
        return out

    def _decide_around(self, uniqueid: str) -> list[Decision]:
        bridge = self._bridge_of.get(uniqueid)
        return self._decide_bridge(bridge) if bridge is not None else self._decide(uniqueid)

    def _pause(self, caller: str, call: _Call) -> list[Decision]:
        """A Mute or Unmute when the caller's pause state changes (R2)."""
        pause = self.pause_of(caller)
        if pause is not None and not call.paused:
            call.paused = True
            return [Mute(caller, pause)]
        if pause is None and call.paused:
            call.paused = False
            return [Unmute(caller)]
        return []

    def _decide(self, caller: str) -> list[Decision]:
        call = self._calls.get(caller)
        bridge = self._bridge_of.get(caller)
        if call is None or call.stopped or bridge is None:
            return []
        out = self._pause(caller, call)
        if bridge in self._holding_bridges:
            return out  # parked: the other members do not talk with the caller
        others = self._through_local(
            {u: c for u, c in self._bridges.get(bridge, {}).items() if u != caller}
        )
        if not others:
            return out  # alone (holding, parking, the other side just hung up): nothing heard
        internal = {u: c for u, c in others.items() if self._classifier.is_internal(c)}
        if not internal:
            call.stopped = True
            return [StopAll(caller, "external")]
        if not call.bridged:  # the first party: decided by the agent gosub at the bridge
            call.bridged = True
            call.accepted.update(others)
            return out
        for uniqueid, channel in others.items():
            if uniqueid not in call.accepted:
                call.accepted.add(uniqueid)
                if uniqueid in internal:
                    out.append(CheckAgent(caller, channel, agent_id_of(channel)))
                else:
                    out.append(CheckAgent(caller, channel, None, external=True))
        return out


def holding_parties(snapshot: list[tuple[str, str, str]], on_hold: Collection[str]) -> set[str]:
    """The uniqueids of ``snapshot`` (``(uniqueid, channel, bridge)``) that hold a call now, from
    the channels that are held (``on_hold``: Asterisk's ``CHANNEL(onhold)``). Asterisk flags the
    channel it told to hold, the one that hears the hold music: when an agent's phone holds,
    the *caller's* channel is flagged (its device, the caller's endpoint or trunk, shows
    ``ONHOLD`` too, or ``INUSE`` when it has other calls up). The party that holds is the other
    side of the held channel's bridge, as an AMI ``Hold`` event would have named it; in a bridge
    of more than two every other member counts (the recording stays muted until each of them is
    seen to unhold or leave: fail safe)."""
    out: set[str] = set()
    for uniqueid, _channel, bridge in snapshot:
        if uniqueid in on_hold and bridge:
            out.update(u for u, _c, b in snapshot if b == bridge and u != uniqueid)
    return out


def _local_partner(channel: str) -> str | None:
    """``Local/x@ctx-00000003;2`` for ``Local/x@ctx-00000003;1`` (and back); None otherwise."""
    if not channel.startswith("Local/") or channel[-2:] not in (";1", ";2"):
        return None
    return channel[:-1] + ("2" if channel.endswith("1") else "1")
