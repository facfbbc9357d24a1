"""Withdrawal of consent after the call (R17, R18, Art 7(3)): by caller number, call reference
or call id, for requests on the withdrawal route, by letter or by e-mail.

In scope are the calls found by the request; what is withdrawn is every **consent-based**
purpose of their recordings (sidecar purposes whose ``consent`` is not null: lawful basis
6(1)(a), i.e. training). Purposes recorded without consent from the start (documentation) are
not touched. Each recording, re-read from its sidecar with full validation (the index only finds
candidates):

* only consent purposes → a ``withdrawn`` ledger entry (``outcome: deleted``), then the
  recording is deleted as purge and erase do (``deleted`` entry with reason ``withdrawn``, the
  tombstone, then the audio; :func:`._delete.delete_recording`);
* consent purposes and a purpose without consent → the audio stays for that purpose only. A
  ``withdrawn`` entry (``outcome: documentation_kept``, the purposes removed and kept, the new
  ``delete_after``) is written first, then the sidecar without the consent purposes, their
  ``purpose:``/``consent:`` tags and any consent purpose waiting in ``agent_purposes``, with
  ``delete_after`` from the remaining purposes' retention counted from ``recording.started_at``
  (never later than before). The state (final or recording) is unchanged. R18: a consent purpose
  is never kept under another basis; the remaining purpose keeps its own basis and retention;
* on legal hold → kept as it is and reported with its hold (exit 1); withdraw again after the
  hold is released (until then retention still applies: the purge skips it while held);
* no consent purpose (documentation only, or nothing recorded) → untouched and reported.

Re-running is safe: a finished recording is a tombstone or has no consent purpose left, so
nothing is written twice. A crash between the ``withdrawn`` entry and the change it announces
leaves the change to the re-run, which writes the entry again (at worst it repeats; none is
lost). ``dry_run`` writes nothing but the audit line. Ledger entries carry call ids only, never
the caller number; the audit log says who asked for what and why.

``Scope(agent=...)``: the agent revoked their own consent to training (R15; by phone or
``callconsent agent revoke``): every recording tagged ``agent:<id>`` loses its consent purposes
the same way, since training needs the agent's consent as well as the caller's.

A call reference (:mod:`callconsent.evidence.callref`) that matches several calls is reported with their
times and nothing is done: the operator asks the requester which call it was, then uses
``--call-id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from callconsent.evidence import callref, sidecar
from callconsent.evidence.fsio import MalformedDocument, utc_stamp
from callconsent.evidence.ledger import LedgerEntryInvalid
from callconsent.evidence.paths import UnsafeIdentifier
from callconsent.evidence.purposes import without_consent_purposes
from callconsent.lifecycle import _trust, query
from callconsent.lifecycle._context import Context
from callconsent.lifecycle._delete import MISSING, delete_recording
from callconsent.lifecycle._schema import WITHDRAWN
from callconsent.lifecycle.errors import LifecycleError
from callconsent.lifecycle.hold import holds_outside_ledger
from callconsent.lifecycle.kept_exports import drop_kept
from callconsent.lifecycle.presence import ledger_says_deleted, require_recordings
from callconsent.lifecycle.query import Recording

SOURCE: Final = "withdraw"
REASON: Final = sidecar.TombstoneReason.WITHDRAWN.value

#: Item actions, and how the report groups them.
DELETED = ("deleted", "would_delete", "completed")
KEPT = ("documentation_kept", "would_keep_documentation")


class WithdrawError(LifecycleError):
    """A withdrawal request that cannot be carried out (no scope, unknown call or reference)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Exactly one of: the caller number, a call reference, a call id (uniqueid or linkedid)."""

    number: str | None = None
    call_ref: str | None = None
    call_id: str | None = None
    #: The agent who revoked their own training consent (R15): training ends in every
    #: recording tagged with them, since training needs the agent's consent as well.
    agent: str | None = None

    @property
    def via(self) -> str:
        keys = ("number", "call_ref", "call_id", "agent")
        given = [k for k in keys if getattr(self, k) is not None]
        if len(given) != 1:
            raise WithdrawError("withdraw needs exactly one of --number, --call-ref, --call-id")
        return given[0]

    def describe(self) -> dict[str, Any]:
        """For logs and reports: never the caller number itself."""
        out = {"by": self.via, "call_ref": self.call_ref, "call_id": self.call_id}
        return out if self.agent is None else {**out, "agent": self.agent}


@dataclass(frozen=True, slots=True)
class Item:
    """What happened to one recording."""

    call_id: str
    file: str
    action: str  # deleted | would_delete | completed | documentation_kept |
    # would_keep_documentation | held | not_consent_based | already_deleted | skipped
    withdrawn: tuple[str, ...] = ()  # consent purposes removed
    kept: tuple[str, ...] = ()  # purposes left (recorded without consent from the start)
    delete_after: str | None = None  # for kept recordings: the new deadline
    detail: str = ""
    hold: dict[str, Any] | None = None
    #: The call was still in progress (sidecar ``recording``): for a deletion, the command
    #: layer must also stop its MixMonitor in Asterisk (R16); this module does no AMI.
    live: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "file": self.file,
            "action": self.action,
            "withdrawn_purposes": list(self.withdrawn),
            "kept_purposes": list(self.kept),
            "delete_after": self.delete_after,
            "detail": self.detail,
            "hold": self.hold,
            "live": self.live,
        }

    def __str__(self) -> str:
        where = f"{self.call_id} {self.file}"
        gone = ", ".join(self.withdrawn)
        if self.action in DELETED:
            verb = "would delete" if self.action == "would_delete" else "deleted"
            return f"{verb}: {where} ({gone} withdrawn{'; ' + self.detail if self.detail else ''})"
        if self.action in KEPT:
            verb = "would keep" if self.action == "would_keep_documentation" else "kept"
            return (
                f"{verb} for {', '.join(self.kept)}: {where} ({gone} withdrawn; kept until "
                f"{self.delete_after})"
            )
        if self.action == "held" and self.hold is not None:
            h = self.hold
            return (
                f"kept (legal hold): {where} ({gone} not withdrawn: {h['reason']}, case "
                f"{h['case_ref']}, review {h['review_date']})"
            )
        if self.action == "not_consent_based":
            return f"untouched (no consent-based purpose): {where} ({', '.join(self.kept)})"
        return f"{self.action}: {where}{f' ({self.detail})' if self.detail else ''}"


@dataclass(slots=True)
class WithdrawReport:
    dry_run: bool
    now: str
    scope: dict[str, Any]
    call_ids: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    ambiguous: list[dict[str, Any]] = field(default_factory=list)  # a call ref with >1 call
    keys_destroyed: int = 0  # caller keys of the calls whose recordings were deleted
    exports_deleted: list[str] = field(default_factory=list)  # kept archives of those calls

    def _of(self, actions: tuple[str, ...]) -> list[Item]:
        return [i for i in self.items if i.action in actions]

    @property
    def complete(self) -> bool:
        """Every consent-based recording in scope withdrawn: none held, skipped or ambiguous."""
        return not self.ambiguous and not self._of(("held", "skipped"))

    def as_dict(self) -> dict[str, Any]:
        def ids(actions: tuple[str, ...]) -> list[dict[str, Any]]:
            return [i.as_dict() for i in self._of(actions)]

        return {
            "dry_run": self.dry_run,
            "now": self.now,
            "complete": self.complete,
            "scope": self.scope,
            "call_ids": self.call_ids,
            "caller_keys_destroyed": self.keys_destroyed,
            "exports_deleted": self.exports_deleted,
            "ambiguous": self.ambiguous,
            "deleted": ids(DELETED),
            "kept_for_documentation": ids(KEPT),
            "held": ids(("held",)),
            "untouched": ids(("not_consent_based",)),
            "already_withdrawn": ids(("already_deleted",)),
            "skipped": ids(("skipped",)),
        }

    def summary(self) -> str:
        if self.ambiguous:
            lines = [
                f"call reference matches {len(self.ambiguous)} calls; nothing done. Ask "
                "the requester which call it was (date, time), then use --call-id:"
            ]
            lines += [f"  {a['call_id']} started {a['started_at']}" for a in self.ambiguous]
            return "\n".join(lines)
        lines = [str(i) for i in self.items]
        lines += [f"kept export deleted: {name}" for name in self.exports_deleted]
        lines.append(
            f"withdraw{' (dry run)' if self.dry_run else ''} by {self.scope['by']}: "
            f"{len(self.call_ids)} call(s); {len(self._of(DELETED))} recording(s) "
            f"{'to delete' if self.dry_run else 'deleted'}, {len(self._of(KEPT))} kept for "
            f"documentation only, {len(self._of(('held',)))} kept on legal hold, "
            f"{len(self._of(('not_consent_based',)))} without consent purposes untouched"
            + (f", {len(self._of(('skipped',)))} skipped" if self._of(("skipped",)) else "")
        )
        return "\n".join(lines)


def _calls(ctx: Context, scope: Scope, report: WithdrawReport) -> list[str]:
    if scope.number is not None:
        return query.find_calls(ctx.index, query.Selector(number=scope.number))
    if scope.agent is not None:
        return query.find_calls(ctx.index, query.Selector(agent=scope.agent))
    if scope.call_id is not None:
        found = query.find_calls(ctx.index, query.Selector(call_id=scope.call_id))
        if not found:
            raise WithdrawError(f"unknown call id {scope.call_id!r}")
        return found
    try:
        ref = callref.normalise(scope.call_ref or "")
    except callref.CallRefError as exc:
        raise WithdrawError(str(exc)) from exc
    matches = query.calls_by_ref(ctx.index, ref)
    if not matches:
        raise WithdrawError(f"no call has reference {callref.display(ref)}")
    if len(matches) > 1:
        report.ambiguous = [{"call_id": u, "started_at": at} for u, at in matches]
        return []
    return [matches[0][0]]


def withdraw(ctx: Context, scope: Scope, *, reason: str, dry_run: bool = False) -> WithdrawReport:
    """Withdraw consent for every call in ``scope`` (see the module docstring)."""
    via = scope.via
    if not reason.strip():
        raise WithdrawError("a withdrawal needs a reason (the request: letter, e-mail, call)")
    report = WithdrawReport(dry_run, utc_stamp(ctx.now), scope.describe())
    with ctx.index.locked():
        ctx.index.update()
        require_recordings(ctx.index, ctx.recordings_dir)
        found, bad = _trust.split_ids(_calls(ctx, scope, report))
        report.call_ids, contested = _trust.of_subject(ctx, found, scope.number)
        report.items += [Item("", "", "skipped", detail=p) for p in bad + contested]
        holds = query.holds(ctx.index)
        holds = {**holds_outside_ledger(ctx, holds), **holds}
        for rec in query.recordings(ctx.index, report.call_ids):
            hold = holds.get(rec.uniqueid)
            held = None if hold is None else {**hold.as_dict(), "file": rec.file}
            report.items.append(_withdraw_one(ctx, rec, held, via=via, dry_run=dry_run))
        if not dry_run:  # a recording deleted at the caller's wish: forget the caller too
            gone = [i.call_id for i in report.items if i.action in DELETED and i.call_id]
            report.keys_destroyed = ctx.index.forget(gone)
            report.exports_deleted = drop_kept(ctx, gone)  # archives holding them in clear
    ctx.audit.write(
        "withdraw_dry_run" if dry_run else "withdraw",
        actor=ctx.actor,
        at=ctx.now,
        reason=reason,
        ids=report.call_ids,
        scope=report.scope,
        deleted=[i.call_id for i in report.items if i.action in DELETED],
        kept_for_documentation=[i.call_id for i in report.items if i.action in KEPT],
        held=[i.call_id for i in report.items if i.action == "held"],
        ambiguous=[a["call_id"] for a in report.ambiguous],
        caller_keys_destroyed=report.keys_destroyed,
        exports_deleted=report.exports_deleted,
    )
    return report


def _withdraw_one(
    ctx: Context, rec: Recording, hold: dict[str, Any] | None, *, via: str, dry_run: bool
) -> Item:
    u, file = rec.uniqueid, rec.file
    try:
        paths = ctx.paths(file)
        if (problem := _trust.pointer_problem(u, paths)) is not None:
            return Item(u, file, "skipped", detail=problem)
        doc: dict[str, Any] | None = sidecar.load(paths)
    except UnsafeIdentifier as exc:
        return Item(u, file, "skipped", detail=f"unsafe path: {exc}")
    except FileNotFoundError:
        doc = None
    except MalformedDocument as exc:
        return Item(u, file, "skipped", detail=f"malformed sidecar {exc.path}: {exc.detail}")
    if (problem := _trust.audio_problem(ctx, u, paths, doc, require_hash=False)) is not None:
        return Item(u, file, "skipped", detail=problem)
    if doc is None:
        if not paths.audio.exists():
            if ledger_says_deleted(ctx.index, u):
                return Item(u, file, "already_deleted", detail="ledger deleted line, no files")
            return Item(u, file, "skipped", detail=MISSING)
        return Item(u, file, "skipped", detail="audio without sidecar: run reconcile first")
    if doc["state"] == sidecar.State.TOMBSTONE:
        if hold is None and paths.audio.exists():  # a deletion interrupted after its tombstone
            done = delete_recording(
                ctx, u, file, reason=REASON, source=SOURCE, expired_only=False, dry_run=dry_run
            )
            return Item(u, file, done.action, detail=done.detail)
        return Item(u, file, "already_deleted", detail=f"tombstone ({doc['reason']})")
    withdrawn = tuple(p["purpose"] for p in doc["purposes"] if p["consent"] is not None)
    kept = tuple(p["purpose"] for p in doc["purposes"] if p["consent"] is None)
    if not withdrawn:
        return Item(u, file, "not_consent_based", kept=kept)
    if hold is not None:
        return Item(u, file, "held", withdrawn, kept, detail=hold["reason"], hold=hold)
    if not kept:
        if dry_run:
            return Item(u, file, "would_delete", withdrawn)
        try:
            _log(ctx, u, file, withdrawn, kept, "deleted", None, via)
        except (OSError, LedgerEntryInvalid) as exc:
            return Item(u, file, "skipped", withdrawn, detail=f"{type(exc).__name__}: {exc}")
        done = delete_recording(ctx, u, file, reason=REASON, source=SOURCE, expired_only=False)
        return Item(
            u,
            file,
            done.action,
            withdrawn,
            detail=done.detail if done.action == "skipped" else "",
            live=doc["state"] == sidecar.State.RECORDING,
        )
    try:
        new = without_consent_purposes(doc, at=ctx.now)
    except sidecar.SidecarInvalid as exc:
        return Item(u, file, "skipped", withdrawn, kept, detail=str(exc))
    if dry_run:
        return Item(u, file, "would_keep_documentation", withdrawn, kept, new["delete_after"])
    try:
        _log(ctx, u, file, withdrawn, kept, "documentation_kept", new["delete_after"], via)
        sidecar.write(paths, new)
    except (OSError, LedgerEntryInvalid, sidecar.SidecarInvalid, MalformedDocument) as exc:
        return Item(u, file, "skipped", withdrawn, kept, detail=f"{type(exc).__name__}: {exc}")
    ctx.index.add_sidecar(paths, new)
    return Item(u, file, "documentation_kept", withdrawn, kept, new["delete_after"])


def _log(
    ctx: Context,
    call_id: str,
    file: str,
    withdrawn: tuple[str, ...],
    kept: tuple[str, ...],
    outcome: str,
    delete_after: str | None,
    via: str,
) -> None:
    entry = ctx.append(
        {
            "type": WITHDRAWN,
            "at": utc_stamp(ctx.now),
            "call": {"uniqueid": call_id},
            "purposes": list(withdrawn),
            "kept_purposes": list(kept),
            "recording": file,
            "outcome": outcome,
            "delete_after": delete_after,
            "via": via,
            "source": SOURCE,
        }
    )
    ctx.index.add_ledger_entry(entry)
