"""The withdrawal route's adapter (R17a, b): a caller's request in, the withdrawal done, the
answer out.

``[callconsent-withdraw-route]`` marks each request in AstDB (``callconsent/withdrawreq/<id>``)
and raises the ``CallconsentWithdrawRequest`` UserEvent (:mod:`callconsent.withdrawal.route`).
This adapter runs the after-call withdrawal (:func:`callconsent.lifecycle.withdraw.withdraw`:
index update, then every consent-based recording of the number or call reference deleted or
kept for documentation only, ledger ``withdrawn`` and ``deleted`` entries, tombstones, an audit
line with actor ``ivr``) in a worker thread (it is blocking file and SQLite I/O), deletes the
marker and answers the route's channel (AMI Setvar ``CALLCONSENT_WITHDRAW_RESULT``), which
waits a few seconds for it: "done", or "registered" when no answer came.

A late "registered" is made true where it can be, and the operator is told where it cannot:
when the route's 4 s wait ended before the answer (the app behind on a loaded machine) it raises
``CallconsentWithdrawRequestLate`` (:meth:`WithdrawRequestHandler.on_late`). Once that request's
own handling has run to its end (an asyncio.Event per request id, registered before any await;
the late event follows the request's on the same AMI stream), the answer it decided (remembered
per request id for :data:`REMEMBER_FOR`) says what follows
(:func:`callconsent.withdrawal.route.when_not_told`): done, pending: nothing; ambiguous: every
call the reference matches withdrawn by its call id, ledger and audit as usual; unknown_ref,
bad_ref: nothing can be done, an ERROR ``withdraw_request_not_told`` for the operator.

The app down (or failing) when the caller asked: the marker stays, and at the next AMI login
:meth:`WithdrawRequestHandler.recover` carries out every request still marked. A request that
cannot be carried out now (storage error) keeps its marker for the next login; a malformed one
(no such call reference, a failed check digit) is logged and its marker deleted. The log has
ids and counts, never the caller number.

The seal key (:func:`seal_key`, ``<ledger dir>/withdraw-seal.key``, 0600, made once) is given
to Asterisk at every AMI login as the global ``CALLCONSENT_SEAL_KEY`` before the markers are
read: the route seals the number with it, so neither AstDB nor a log line holds it in clear.
Asterisk keeps the key in memory only: after an Asterisk restart the route stores nothing until
the app has logged in again (the caller hears "nothing has been changed").
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

import structlog

from callconsent import markers, names
from callconsent.ami import AmiError
from callconsent.clock import Clock, utc_now
from callconsent.lifecycle import Context
from callconsent.lifecycle.hold import HoldsUnknown
from callconsent.lifecycle.presence import RecordingsUnavailable
from callconsent.lifecycle.withdraw import (
    DELETED,
    KEPT,
    Scope,
    WithdrawError,
    WithdrawReport,
    withdraw,
)
from callconsent.withdrawal import route as rules

log = structlog.get_logger("callconsent.withdrawal.route_adapter")


def scope_of(request: rules.Request) -> Scope:
    """The withdrawal job's scope for a route request: the number shown, or the reference typed."""
    if request.by == "number":
        return Scope(number=request.value)
    return Scope(call_ref=request.value)


ACTOR: Final = "ivr"
SOURCE_EVENT: Final = "route"
SOURCE_RECOVERED: Final = "recovered at AMI login"


SEAL_KEY_NAME: Final = "withdraw-seal.key"
#: How long the app remembers a request's answer for its late event: the route raises it 4 s
#: after the request's event and the app reads both in order; minutes cover any backlog.
REMEMBER_FOR: Final = timedelta(minutes=10)


def seal_key(ledger_path: Path) -> str:
    """The withdrawal route's seal key beside the ledger, made (0600) the first time."""
    path = ledger_path.parent / SEAL_KEY_NAME
    try:
        key = path.read_text("ascii").strip()
    except FileNotFoundError:
        key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
    if not rules.SEAL_KEY_RE.fullmatch(key):
        raise ValueError(f"{path}: not a seal key (16 letters and digits)")
    return key


class RequestAmi(Protocol):
    async def db_del(self, family: str, key: str) -> None: ...
    async def db_tree(self, family: str, key: str) -> list[tuple[str, str]]: ...
    async def setvar(self, channel: str, variable: str, value: str) -> None: ...
    async def set_global(self, variable: str, value: str) -> None: ...


#: Runs one withdrawal (blocking) of a scope, with the reason for the audit log: the report, or
#: raises WithdrawError/OSError/...
Runner = Callable[[Scope, str, datetime], WithdrawReport]


def lifecycle_runner(
    recordings_dir: Path, ledger_path: Path, *, anchor_path: Path | None = None
) -> Runner:
    """The CLI's withdrawal, with a context of its own per request (SQLite is per thread)."""

    def run(scope: Scope, reason: str, now: datetime) -> WithdrawReport:
        with Context.create(
            recordings_dir, ledger_path, now=now, actor=ACTOR, anchor_path=anchor_path
        ) as ctx:
            return withdraw(ctx, scope, reason=reason)

    return run


@dataclass(frozen=True, slots=True)
class Handled:
    """One request as the app handled it: the answer it decided, the calls a reference matched
    when it was ambiguous, and the reason its audit line gave (ids and times, never the value)."""

    result: rules.Result
    ambiguous: tuple[str, ...]
    reason: str
    at: datetime


class WithdrawRequestHandler:
    def __init__(
        self,
        ami: RequestAmi,
        run: Runner,
        *,
        key: Callable[[], str],
        clock: Clock = utc_now,
    ) -> None:
        self._ami = ami
        self._run = run
        self._clock = clock
        self._load_key = key
        self._key = ""  # none yet: every request is refused (and the route stores none)
        #: per request id: set once that request's own handling has run to its end
        self._busy: dict[str, asyncio.Event] = {}
        #: per request id: what its handling decided (until its late event, or pruned)
        self._handled: dict[str, Handled] = {}

    async def on_request_event(self, headers: dict[str, str]) -> None:
        """One ``CallconsentWithdrawRequest`` UserEvent (AMI headers, any case)."""
        request_id = _safe(headers)
        mine = asyncio.Event()
        if request_id:  # before any await: a late event of this request waits for it
            self._busy[request_id] = mine
        try:
            request = rules.from_event(headers, await self._seal_key())
            if request is None:
                log.warning("withdraw_request_invalid", request_id=request_id)
                return
            await self.handle(request, SOURCE_EVENT)
        finally:
            mine.set()
            if self._busy.get(request_id) is mine:
                del self._busy[request_id]

    async def on_late(self, headers: dict[str, str]) -> None:
        """One ``CallconsentWithdrawRequestLate`` UserEvent: the route's wait ended before the
        app's answer and the caller heard "registered, it will be done shortly". Once that
        request's own handling has run to its end (its event came first on the same AMI
        stream), the app makes that true where it can (:func:`rules.when_not_told`):

        * done, pending: nothing more;
        * ambiguous: every call the reference matches is withdrawn, each by its call id (ledger
          and audit as usual, actor ``ivr``). A training recording of another caller whose call
          shares the reference loses its training purpose too: that is the fail-safe side (less
          kept, never a withdrawal the caller believes in left undone);
        * unknown_ref, bad_ref: nothing can be done; an ERROR tells the operator a caller heard
          "registered" for a request that matched no call;
        * a request this app never handled: its marker, if still in AstDB, is carried out at the
          next AMI login.
        """
        request_id = _safe(headers)
        if not request_id:
            log.warning("withdraw_request_late_invalid")
            return
        earlier = self._busy.get(request_id)
        if earlier is not None:
            await earlier.wait()
        handled = self._handled.pop(request_id, None)
        result = None if handled is None else handled.result
        action = rules.when_not_told(result)
        bound = log.bind(request_id=request_id, result=result, done=action)
        if action == "withdraw_every_match" and handled is not None:
            await self._withdraw_each(handled, bound)
        elif action == "cannot_be_done":
            bound.error("withdraw_request_not_told")
        else:
            bound.info("withdraw_request_not_told")

    async def recover(self) -> int:
        """Give Asterisk the seal key, then carry out every request still marked in AstDB
        (after a login); the number done."""
        key = await self._seal_key()
        if key:
            try:
                await self._ami.set_global(names.VAR_SEAL_KEY, key)
            except AmiError as exc:  # the route stores no request until the next login
                log.error("withdraw_seal_key_not_set", error=str(exc))

        async def finish(key: str, value: str) -> bool:
            request = rules.from_marker(key, value, self._key)  # "" (no key): refused
            if request is None:
                log.warning("withdraw_request_marker_invalid")
                await self._forget(key.rsplit("/", 1)[-1])
                return False
            return await self.handle(request, SOURCE_RECOVERED)

        return await markers.recover(
            self._ami, names.ASTDB_WITHDRAW_REQUEST_PREFIX, finish, what="withdraw_requests"
        )

    async def _seal_key(self) -> str:
        """The seal key, read (or made) once; "" when it cannot be (logged)."""
        if not self._key:
            try:
                self._key = await asyncio.to_thread(self._load_key)
            except (OSError, ValueError) as exc:
                log.error("withdraw_seal_key_unavailable", error=f"{type(exc).__name__}: {exc}")
        return self._key

    async def handle(self, request: rules.Request, source: str) -> bool:
        """Carry out ``request``, delete its marker unless it must be retried, answer the caller
        (when it came from a channel). True when finished (marker deleted)."""
        bound = log.bind(request_id=request.request_id, by=request.by, source=source)
        result, final, ambiguous = await self._withdraw(request, source, bound)
        now = self._clock()
        self._prune(now)
        if request.channel:  # the caller may not hear it in time: for the late event
            reason = request.reason(source)
            self._handled[request.request_id] = Handled(result, ambiguous, reason, now)
        if final:
            await self._forget(request.request_id)
        if request.channel:
            try:
                await self._ami.setvar(request.channel, names.VAR_WITHDRAW_RESULT, result)
            except AmiError as exc:  # the caller hung up, or is past the wait: "registered"
                bound.info("withdraw_request_not_answered", error=str(exc))
        return final

    async def _withdraw(
        self, request: rules.Request, source: str, bound: Any
    ) -> tuple[rules.Result, bool, tuple[str, ...]]:
        """(the answer, whether the request is finished: its marker can go, the calls an
        ambiguous reference matched)."""
        if request.by == "call_ref" and (problem := rules.ref_problem(request.value)):
            bound.warning("withdraw_request_refused", result=problem)
            return problem, True, ()
        reason = request.reason(source)
        try:
            report = await asyncio.to_thread(self._run, scope_of(request), reason, self._clock())
        except WithdrawError as exc:  # no call has that reference
            bound.warning("withdraw_request_refused", result="unknown_ref", error=str(exc))
            return "unknown_ref", True, ()
        except (
            OSError,
            sqlite3.Error,
            ValueError,
            RecordingsUnavailable,
            HoldsUnknown,
        ) as exc:  # the marker stays: retried at login
            bound.error("withdraw_request_failed", error=f"{type(exc).__name__}: {exc}")
            return "pending", False, ()
        result = rules.answer(report)
        _report(bound, report, result)
        return result, True, tuple(str(a["call_id"]) for a in report.ambiguous)

    async def _withdraw_each(self, handled: Handled, bound: Any) -> None:
        """Every call an ambiguous reference matched withdrawn, each by its call id (each in a
        context of its own: one that fails leaves the others done)."""
        reason = f"{handled.reason}; told 'registered' for a reference of several calls"
        reports: list[WithdrawReport] = []
        failed: list[str] = []
        for call_id in handled.ambiguous:
            try:
                reports.append(
                    await asyncio.to_thread(
                        self._run, Scope(call_id=call_id), reason, self._clock()
                    )
                )
            except (
                WithdrawError,
                OSError,
                sqlite3.Error,
                ValueError,
                RecordingsUnavailable,
                HoldsUnknown,
            ) as exc:  # the operator finishes it: callconsent withdraw --call-id
                bound.error(
                    "withdraw_request_not_told_failed",
                    call_id=call_id,
                    error=f"{type(exc).__name__}: {exc}",
                )
                failed.append(call_id)
        items = [i for r in reports for i in r.items]
        bound.warning(
            "withdraw_request_not_told",
            call_ids=[c for c in handled.ambiguous if c not in failed],
            deleted_ids=[i.call_id for i in items if i.action in DELETED],
            kept_ids=[i.call_id for i in items if i.action in KEPT],
            held_ids=[i.call_id for i in items if i.action == "held"],
            skipped=len([i for i in items if i.action == "skipped"]),
            failed_ids=failed,
            complete=not failed and all(r.complete for r in reports),
        )

    def _prune(self, now: datetime) -> None:
        for request_id in [r for r, h in self._handled.items() if now - h.at > REMEMBER_FOR]:
            del self._handled[request_id]

    async def _forget(self, request_id: str) -> None:
        try:
            await self._ami.db_del(
                names.ASTDB_FAMILY, names.ASTDB_WITHDRAW_REQUEST_PREFIX + request_id
            )
        except AmiError as exc:  # the next login finds it again; withdrawing twice is harmless
            log.warning(
                "withdraw_request_marker_not_deleted", request_id=request_id, error=str(exc)
            )


def _report(bound: Any, report: WithdrawReport, result: str) -> None:
    """What was done, as the CLI's summary says it: call ids and counts, never the number."""
    of = {
        action: [i.call_id for i in report.items if i.action in actions]
        for action, actions in (
            ("deleted", DELETED),
            ("kept", KEPT),
            ("held", ("held",)),
            ("skipped", ("skipped",)),
        )
    }
    bound.info(
        "withdraw_request_done",
        result=result,
        complete=report.complete,
        calls=len(report.call_ids),
        call_ids=report.call_ids,
        deleted=len(of["deleted"]),
        deleted_ids=of["deleted"],
        kept_for_documentation=len(of["kept"]),
        kept_ids=of["kept"],
        held=len(of["held"]),
        held_ids=of["held"],
        skipped=len(of["skipped"]),
        ambiguous=[a["call_id"] for a in report.ambiguous],
    )


def _safe(headers: dict[str, str]) -> str:
    """The request id of a refused event for the log, only if it is a plain id."""
    value = {k.lower(): v for k, v in headers.items()}.get("request", "").strip()
    return value if rules.REQUEST_RE.fullmatch(value) else ""
