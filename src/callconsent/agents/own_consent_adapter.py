"""The agent's own consent from their phone (R15): the adapter. Rules: :mod:`.own_consent`.

On a ``CallconsentAgentSelf`` UserEvent: the registry changes (ledger ``agent_consent`` entry
first, ``changed_by: phone:<id>``, ``source: phone``), the AstDB flag is mirrored, and on a
revocation the agent's earlier recordings lose their training purpose
(:func:`callconsent.lifecycle.withdraw.withdraw` with ``Scope(agent=...)``: training-only
recordings become tombstones, mixed ones keep documentation only; ledger ``withdrawn`` and
``deleted`` entries, an audit line with actor ``phone:<id>``), in a worker thread. Then the
app answers on the agent's channel (``CALLCONSENT_AGENT_SELF_RESULT``), and the dialplan plays
the confirmation.

Fail safe: a registry that cannot be written changes nothing and the agent hears "failed"; a
mirror that fails leaves the AstDB flag and the registry disagreeing, which the bridge treats as
refused (never as consent) until the next login re-syncs; a revocation whose earlier recordings
could not all be done (storage error, legal hold) is still a revocation, and the agent hears
that the deletion follows ("refused_pending"; ``callconsent agent revoke <id>``, run again,
finishes it).

The confirmation is never untrue under load: the context reads the answer once when its 5 s wait
ends; when it read nothing it plays "failed, nothing changed" and raises
``CallconsentAgentSelfLate`` (:meth:`OwnConsentHandler.on_late`). Once that agent's request has
run to its end (the late event follows it on the same AMI stream; each agent's events are handled
one at a time, in their order), a give the app applied meanwhile is undone: the registry goes
back to ``refused`` (ledger entry, AstDB flag) unless it was ``given`` before, and training
leaves the agent's recordings made meanwhile, as a revocation does. A withdrawal stays
withdrawn. Rule: :func:`callconsent.agents.own_consent.when_not_told`; log ``agent_self_not_told``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

import structlog

from callconsent import names
from callconsent.agents import own_consent as rules
from callconsent.agents.registry import AgentConsent, AgentRegistryError, mirror
from callconsent.ami import AmiError, AmiOps
from callconsent.clock import Clock, utc_now
from callconsent.config import PromptText
from callconsent.lifecycle import Context
from callconsent.lifecycle.withdraw import DELETED, KEPT, Scope, WithdrawReport, withdraw
from callconsent.prompts import PromptSource

log = structlog.get_logger("callconsent.agents.own_consent_adapter")

SOURCE: Final = "phone"
REASON: Final = "the agent revoked their own consent to training recordings (R15)"
#: How long the app remembers a request for its late event: the context raises it 5 s after
#: the request's event, and the app reads both in order; minutes cover any backlog.
REMEMBER_FOR: Final = timedelta(minutes=10)

#: (agent id, now) -> the withdrawal of training from that agent's earlier recordings.
RevokeRunner = Callable[[str, datetime], WithdrawReport]


class Registry(Protocol):
    def get(self, agent_id: str) -> AgentConsent | None: ...
    def set(
        self, agent_id: str, consent: str, *, actor: str, now: datetime, source: str = "cli"
    ) -> AgentConsent: ...


@dataclass(frozen=True, slots=True)
class Handled:
    """One request as the app handled it: what it asked, whether the registry changed, and the
    agent's state before (None: not in the registry)."""

    consent: rules.Consent
    applied: bool
    before: rules.Consent | None
    at: datetime


def prompt_sources() -> list[PromptSource]:
    """The confirmations the agent hears, per language (``<prompts_dir>/<lang>/...``)."""
    return [
        PromptSource(
            f"agent_self.{result}", lang, PromptText(names.AGENT_SELF_PROMPTS[result], text)
        )
        for result, texts in rules.TEXTS.items()
        for lang, text in texts.items()
    ]


def actor_of(agent_id: str) -> str:
    return f"phone:{agent_id}"


def revoke_runner(
    recordings_dir: Path, ledger_path: Path, *, anchor_path: Path | None = None
) -> RevokeRunner:
    """The revocation's effect on earlier recordings, with a context of its own per request."""

    def run(agent_id: str, now: datetime) -> WithdrawReport:
        with Context.create(
            recordings_dir,
            ledger_path,
            now=now,
            actor=actor_of(agent_id),
            anchor_path=anchor_path,
        ) as ctx:
            return withdraw(ctx, Scope(agent=agent_id), reason=REASON)

    return run


class OwnConsentHandler:
    def __init__(
        self, ami: AmiOps, registry: Registry, revoke: RevokeRunner, *, clock: Clock = utc_now
    ) -> None:
        self._ami = ami
        self._registry = registry
        self._revoke = revoke
        self._clock = clock
        #: per agent: set once the agent's last event so far (request or late) was handled
        self._busy: dict[str, asyncio.Event] = {}
        #: per channel: the request it raised, as handled (until its late event, or pruned)
        self._handled: dict[str, Handled] = {}

    async def on_event(self, headers: dict[str, str]) -> None:
        """One ``CallconsentAgentSelf`` UserEvent (AMI headers, any case)."""
        request = rules.from_event(headers)
        if request is None:
            channel = {k.lower(): v for k, v in headers.items()}.get("channel", "")
            log.warning("agent_self_invalid", consent=headers.get("Consent", "")[:16])
            if channel:
                await self._answer(channel, "failed")
            return
        earlier, mine = self._queue(request.agent_id)  # before any await: a late event waits
        try:
            if earlier is not None:
                await earlier.wait()
            result = await self.handle(request)
            await self._answer(request.channel, result)
        finally:
            self._release(request.agent_id, mine)

    async def on_late(self, headers: dict[str, str]) -> None:
        """One ``CallconsentAgentSelfLate`` UserEvent: the context's wait ended before the app's
        answer, and the agent heard "failed, nothing changed". Once that agent's request has run
        to its end, a give the app applied is undone unless the agent had consented before."""
        request = rules.from_event(headers)
        if request is None:
            log.warning("agent_self_late_invalid", consent=headers.get("Consent", "")[:16])
            return
        earlier, mine = self._queue(request.agent_id)
        try:
            if earlier is not None:  # the same AMI stream raised the request's event first
                await earlier.wait()
            await self._not_told(request)
        finally:
            self._release(request.agent_id, mine)

    async def handle(self, request: rules.OwnConsentRequest) -> rules.Result:
        bound = log.bind(agent=request.agent_id, consent=request.consent)
        now = self._clock()
        self._prune(now)
        # until known otherwise: applied, from an unknown state (counts as refused: fail safe)
        self._handled[request.channel] = Handled(request.consent, True, None, now)
        try:
            before, record = await asyncio.to_thread(self._swap, request, now)
        except (AgentRegistryError, OSError) as exc:
            bound.error("agent_self_failed", error=f"{type(exc).__name__}: {exc}")
            self._handled[request.channel] = Handled(request.consent, False, None, now)
            return rules.result_of(request.consent, registered=False, recordings_done=False)
        self._handled[request.channel] = Handled(request.consent, True, before, now)
        try:
            await mirror(self._ami, record)
        except AmiError as exc:  # registry and flag disagree: the bridge counts it as refused
            bound.warning("agent_self_mirror_failed", error=str(exc))
        done = True
        if request.consent == "refused":
            done = await self._withdraw_training(request.agent_id, now)
        result = rules.result_of(request.consent, registered=True, recordings_done=done)
        bound.info("agent_self_done", result=result)
        return result

    def _swap(
        self, request: rules.OwnConsentRequest, now: datetime
    ) -> tuple[rules.Consent | None, AgentConsent]:
        """The agent's state before, and the record that replaced it (in a worker thread)."""
        before = self._registry.get(request.agent_id)
        record = self._registry.set(
            request.agent_id,
            request.consent,
            actor=actor_of(request.agent_id),
            now=now,
            source=SOURCE,
        )
        return (None if before is None else before.consent), record

    async def _not_told(self, request: rules.OwnConsentRequest) -> None:
        handled = self._handled.pop(request.channel, None)
        if handled is None:  # the app never saw that request: nothing changed, as heard
            action = rules.when_not_told(request.consent, applied=False, before=None)
        else:
            action = rules.when_not_told(
                handled.consent, applied=handled.applied, before=handled.before
            )
        bound = log.bind(agent=request.agent_id, consent=request.consent, done=action)
        if action == "restore_refused":
            now = self._clock()
            restored = await self._restore_refused(request.agent_id, now, bound)
            recordings_done = await self._withdraw_training(request.agent_id, now)
            bound.warning(
                "agent_self_not_told", registered=restored, recordings_done=recordings_done
            )
        else:
            bound.warning("agent_self_not_told")

    async def _restore_refused(self, agent_id: str, now: datetime, bound: Any) -> bool:
        """The registry back to refused (ledger entry) and the AstDB flag to 0. A registry that
        cannot be written still gets the flag: the bridge counts a disagreement as refused."""
        record = AgentConsent(agent_id, "refused", now, actor_of(agent_id))
        registered = True
        try:
            record = await asyncio.to_thread(
                self._registry.set,
                agent_id,
                "refused",
                actor=actor_of(agent_id),
                now=now,
                source=SOURCE,
            )
        except (AgentRegistryError, OSError) as exc:
            bound.error("agent_self_not_told_failed", error=f"{type(exc).__name__}: {exc}")
            registered = False
        try:
            await mirror(self._ami, record)
        except AmiError as exc:  # registry and flag disagree: the bridge counts it as refused
            bound.warning("agent_self_mirror_failed", error=str(exc))
        return registered

    def _queue(self, agent_id: str) -> tuple[asyncio.Event | None, asyncio.Event]:
        """The agent's event handled before this one (to wait for), and this one's."""
        earlier = self._busy.get(agent_id)
        mine = self._busy[agent_id] = asyncio.Event()
        return earlier, mine

    def _release(self, agent_id: str, mine: asyncio.Event) -> None:
        mine.set()
        if self._busy.get(agent_id) is mine:
            del self._busy[agent_id]

    def _prune(self, now: datetime) -> None:
        for channel in [c for c, h in self._handled.items() if now - h.at > REMEMBER_FOR]:
            del self._handled[channel]

    async def _withdraw_training(self, agent_id: str, now: datetime) -> bool:
        try:
            report = await asyncio.to_thread(self._revoke, agent_id, now)
        except (OSError, sqlite3.Error, ValueError) as exc:
            log.error(
                "agent_self_recordings_failed", agent=agent_id, error=f"{type(exc).__name__}: {exc}"
            )
            return False
        log.info(
            "agent_self_recordings",
            agent=agent_id,
            deleted=[i.call_id for i in report.items if i.action in DELETED],
            kept_for_documentation=[i.call_id for i in report.items if i.action in KEPT],
            held=[i.call_id for i in report.items if i.action == "held"],
            skipped=[i.call_id for i in report.items if i.action == "skipped"],
        )
        return report.complete

    async def _answer(self, channel: str, result: str) -> None:
        try:
            await self._ami.setvar(channel, names.VAR_AGENT_SELF_RESULT, result)
        except AmiError as exc:  # the agent hung up, or is past the wait: they hear "failed"
            log.info("agent_self_not_answered", error=str(exc))
