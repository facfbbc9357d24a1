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
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

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

#: (agent id, now) -> the withdrawal of training from that agent's earlier recordings.
RevokeRunner = Callable[[str, datetime], WithdrawReport]


class Registry(Protocol):
    def set(
        self, agent_id: str, consent: str, *, actor: str, now: datetime, source: str = "cli"
    ) -> AgentConsent: ...


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

    async def on_event(self, headers: dict[str, str]) -> None:
        """One ``CallconsentAgentSelf`` UserEvent (AMI headers, any case)."""
        request = rules.from_event(headers)
        if request is None:
            channel = {k.lower(): v for k, v in headers.items()}.get("channel", "")
            log.warning("agent_self_invalid", consent=headers.get("Consent", "")[:16])
            if channel:
                await self._answer(channel, "failed")
            return
        result = await self.handle(request)
        await self._answer(request.channel, result)

    async def handle(self, request: rules.OwnConsentRequest) -> rules.Result:
        bound = log.bind(agent=request.agent_id, consent=request.consent)
        now = self._clock()
        try:
            record = await asyncio.to_thread(
                self._registry.set,
                request.agent_id,
                request.consent,
                actor=actor_of(request.agent_id),
                now=now,
                source=SOURCE,
            )
        except (AgentRegistryError, OSError) as exc:
            bound.error("agent_self_failed", error=f"{type(exc).__name__}: {exc}")
            return rules.result_of(request.consent, registered=False, recordings_done=False)
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
