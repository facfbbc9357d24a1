"""Erasure (R29, Art 17): per data subject (caller number) or per call, across all purposes.

Every recording of the matched calls is tombstoned with reason ``erased`` and a ``deleted``
ledger entry, except recordings under a legal hold: they are kept and reported with the hold's
reason (Art 17(3)(e)). Re-running is safe. The consent evidence in the ledger is kept by default
(it documents the lawfulness of what was done, for legal claims; the purge's anonymise step
handles it later); ``anonymise_evidence`` writes an ``anonymised`` entry for the erased calls now.
The callers of the calls not on hold are forgotten all the same: their keys are destroyed, so
the number and name in those ledger entries can no longer be read (:mod:`.subjects`), and the
subject-access archives the system keeps for those calls are deleted (:mod:`.kept_exports`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callconsent.lifecycle import _trust, query
from callconsent.lifecycle._context import Context
from callconsent.lifecycle._delete import Outcome, delete_recording
from callconsent.lifecycle.anonymise import anonymise_calls
from callconsent.lifecycle.errors import LifecycleError
from callconsent.lifecycle.hold import holds_outside_ledger
from callconsent.lifecycle.kept_exports import drop_kept
from callconsent.lifecycle.presence import require_recordings

SOURCE = "erase"
REASON = "erased"


class EraseError(LifecycleError):
    """An erasure request that cannot be carried out."""


@dataclass(slots=True)
class EraseReport:
    dry_run: bool
    call_ids: list[str]
    outcomes: list[Outcome] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    anonymised_seqs: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # evidence not acted on, and why
    keys_destroyed: int = 0  # caller keys: the ledger's numbers and names of the calls forgotten
    exports_deleted: list[str] = field(default_factory=list)  # kept archives holding the calls

    @property
    def complete(self) -> bool:
        """Nothing held back, nothing skipped, no problem."""
        return (
            not self.held
            and not self.problems
            and not any(o.action == "skipped" for o in self.outcomes)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "complete": self.complete,
            "call_ids": self.call_ids,
            "outcomes": [o.as_dict() for o in self.outcomes],
            "held": self.held,
            "anonymised_ledger_seqs": self.anonymised_seqs,
            "caller_keys_destroyed": self.keys_destroyed,
            "exports_deleted": self.exports_deleted,
            "problems": self.problems,
        }

    def summary(self) -> str:
        lines = [str(o) for o in self.outcomes if o.action != "held"]
        lines += [
            f"kept (legal hold): {h['call_id']} {h['file']}: {h['reason']} "
            f"(case {h['case_ref']}, review {h['review_date']})"
            for h in self.held
        ]
        lines += [f"problem: {p}" for p in self.problems]
        lines += [f"kept export deleted: {name}" for name in self.exports_deleted]
        done = sum(1 for o in self.outcomes if o.action in ("deleted", "would_delete"))
        lines.append(
            f"erase{' (dry run)' if self.dry_run else ''}: {len(self.call_ids)} call(s),"
            f" {done} recording(s) {'to erase' if self.dry_run else 'erased'}, "
            f"{len(self.held)} kept on hold, {self.keys_destroyed} caller key(s) destroyed"
        )
        return "\n".join(lines)


def erase(
    ctx: Context,
    selector: query.Selector,
    *,
    reason: str,
    dry_run: bool = False,
    anonymise_evidence: bool = False,
) -> EraseReport:
    """Erase the recordings of the calls matched by ``selector`` (number and/or call id)."""
    if selector.number is None and selector.call_id is None:
        raise EraseError("erase needs --number or --call-id")
    if not reason.strip():
        raise EraseError("an erasure needs a reason")
    if selector.call_id is not None and _trust.id_problem(selector.call_id) is not None:
        raise EraseError(f"--call-id {selector.call_id!r} is not an Asterisk uniqueid")
    with ctx.index.locked():
        ctx.index.update()
        require_recordings(ctx.index, ctx.recordings_dir)
        call_ids = query.find_calls(ctx.index, selector)
        if not call_ids:
            raise EraseError(f"no calls found for {selector.said()}: nothing was erased")
        call_ids, bad_ids = _trust.split_ids(call_ids)
        call_ids, contested = _trust.of_subject(ctx, call_ids, selector.number)
        report = EraseReport(dry_run, call_ids, problems=bad_ids + contested)
        holds = query.holds(ctx.index)
        holds = {**holds_outside_ledger(ctx, holds), **holds}
        for rec in query.recordings(ctx.index, call_ids):
            hold = holds.get(rec.uniqueid)
            if hold is not None:
                report.outcomes.append(Outcome(rec.uniqueid, rec.file, "held", hold.reason))
                report.held.append({**hold.as_dict(), "file": rec.file})
                continue
            report.outcomes.append(
                delete_recording(
                    ctx,
                    rec.uniqueid,
                    rec.file,
                    reason=REASON,
                    source=SOURCE,
                    expired_only=False,
                    dry_run=dry_run,
                    verify=True,
                )
            )
        free = [c for c in call_ids if c not in holds]
        report.exports_deleted = drop_kept(ctx, free, dry_run=dry_run)
        if not dry_run:  # the callers' keys: their numbers and names in the ledger unreadable
            report.keys_destroyed = ctx.index.forget(free)
        if anonymise_evidence and not dry_run:
            free = [c for c in call_ids if c not in holds and not query.is_anonymised(ctx.index, c)]
            report.anonymised_seqs = anonymise_calls(ctx, free, reason=REASON)
    ctx.audit.write(
        "erase_dry_run" if dry_run else "erase",
        actor=ctx.actor,
        at=ctx.now,
        reason=reason,
        ids=call_ids,
        selector=selector.describe(),
        held=[h["call_id"] for h in report.held],
        deleted=[o.call_id for o in report.outcomes if o.action == "deleted"],
        caller_keys_destroyed=report.keys_destroyed,
        exports_deleted=report.exports_deleted,
    )
    return report
