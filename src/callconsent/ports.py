"""What the call-flow adapters (:mod:`callconsent.stasis` for ARI, :mod:`callconsent.agi` for
FastAGI) need from the rest of the app: the ARI operations, the planner and the evidence store, as
protocols (fakes implement them in tests)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from callconsent.consent import CallOutcome, CallPlan
from callconsent.evidence.documents import CallInfo

#: The reason when no recording may start because the app cannot watch who takes part in the
#: call (AMI away, R36): the same for the ARI and the FastAGI flow.
NOT_WATCHED = "ami_unavailable"


class AriOps(Protocol):
    """The part of :class:`callconsent.ari.AriClient` this adapter uses."""

    async def answer(self, channel_id: str) -> None: ...
    async def play(
        self, channel_id: str, media: str | list[str], playback_id: str, lang: str | None = None
    ) -> Any: ...
    async def stop_playback(self, playback_id: str) -> None: ...
    async def set_variable(self, channel_id: str, name: str, value: str) -> None: ...
    async def set_variables(self, channel_id: str, pairs: Sequence[tuple[str, str]]) -> None: ...
    async def get_variable(self, channel_id: str, name: str) -> str: ...
    async def continue_in_dialplan(self, channel_id: str) -> None: ...
    async def subscribe(self, event_source: str) -> None: ...
    async def unsubscribe(self, event_source: str) -> None: ...
    async def filter_events(
        self, disallowed: Sequence[str] = (), *, allowed: Sequence[str] = ()
    ) -> None: ...
    async def application_channel_ids(self) -> list[str]: ...
    async def get_channel(self, channel_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Skip:
    """The hook was entered for a route that runs no consent flow (unknown or disabled)."""

    status: str
    reason: str


def kept_caller_name(decision: CallPlan | Skip, name: str | None) -> str | None:
    """The caller's display name as the evidence may hold it: only on a route that asks for
    it (``store_caller_name``); otherwise it is dropped before anything is written."""
    return name if isinstance(decision, CallPlan) and decision.store_caller_name else None


class Planner(Protocol):
    def plan(self, route_arg: str | None, dialled: str | None) -> CallPlan | Skip: ...


class Store(Protocol):
    """Evidence storage (see :mod:`callconsent.store`)."""

    async def prepare_recording(
        self, outcome: CallOutcome, call: CallInfo, started: datetime
    ) -> str:  # returns the absolute audio path MixMonitor is to write
        ...

    async def write_call(
        self, outcome: CallOutcome, call: CallInfo, *, final: bool = True
    ) -> None: ...
    async def discard_recording(self, uniqueid: str, at: datetime, reason: str) -> None: ...
    async def write_unhandled(self, call: CallInfo, status: str, reason: str) -> None: ...
    async def recording_ended(self, call: CallInfo, ended: datetime) -> None: ...


async def write_unhandled(
    store: Store, info: CallInfo, status: str, reason: str, bound: Any
) -> None:
    """The ledger entry of a call the flow never ran for (both adapters); evidence trouble is
    logged, never raised, so it cannot keep the app from letting the next call go."""
    try:
        await store.write_unhandled(info, status, reason)
    except (OSError, ValueError) as exc:
        bound.error("storage_error", action="write_unhandled", error=str(exc))


class Objections(Protocol):
    """The objection adapter (:class:`callconsent.objection.adapter.ObjectionHandler`)."""

    def variables(self, route: str, recorded: tuple[str, ...]) -> list[tuple[str, str]]: ...
    async def on_late_digit(self, uniqueid: str, digit: str, route: str) -> None: ...
