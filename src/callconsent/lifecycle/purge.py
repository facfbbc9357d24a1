"""Retention purge (R25, R26): delete every recording whose ``delete_after`` has passed.

Runs daily (``deploy/systemd/callconsent-purge.timer``). For each expired recording found in the
index (after an incremental :meth:`Index.update`): a held one is skipped and reported with its
hold; otherwise a ``deleted`` ledger entry (reason ``retention``) is written, then the tombstone
replaces the sidecar and the audio is removed (see :mod:`._delete`). ``dry_run`` changes nothing.
Re-running after an interruption is safe. Before whole files, each purpose of a file kept for
several purposes ends at its own deadline (:mod:`.purpose_expiry`). Then the separate :func:`~.anonymise.anonymise` step
handles consent evidence past retention + the claims period.

What it does not delete: audio without a sidecar (``reconcile`` reports it; its retention is
unknown), export archives handed out for subject access (they are the requester's copy).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from callconsent.evidence.fsio import utc_stamp
from callconsent.evidence.paths import iter_symlinked_folders
from callconsent.lifecycle import query
from callconsent.lifecycle._context import Context
from callconsent.lifecycle._delete import Outcome, delete_recording
from callconsent.lifecycle.errors import DiskFull
from callconsent.lifecycle.hold import holds_outside_ledger, is_overdue
from callconsent.lifecycle.presence import require_recordings
from callconsent.lifecycle.purpose_expiry import ENDED, expire_purposes

SOURCE = "purge"
REASON = "retention"
#: Recordings per audit batch: each batch's ids are on the audit log (``purge_batch``) before
#: the first of them is deleted, and its outcome (``purge``) before the next batch starts.
AUDIT_CHUNK = 100


@dataclass(slots=True)
class PurgeReport:
    dry_run: bool
    now: str
    counts: dict[str, int] = field(default_factory=dict)  # per Outcome.action
    held: list[dict[str, Any]] = field(default_factory=list)  # each with its hold
    skipped: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # malformed input found by the index

    @property
    def overdue_holds(self) -> int:
        return sum(1 for h in self.held if h["overdue"])

    @property
    def clean(self) -> bool:
        """No skipped item, no malformed input, no overdue hold (current holds are normal)."""
        return not self.skipped and not self.problems and not self.overdue_holds

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "now": self.now,
            "clean": self.clean,
            "counts": self.counts,
            "held": self.held,
            "skipped": [s.as_dict() for s in self.skipped],
            "problems": self.problems,
        }

    def summary(self) -> str:
        lines = [
            f"held: {h['call_id']} {h['file']} (hold: {h['reason']}, case {h['case_ref']}, "
            f"review {h['review_date']}{', OVERDUE' if h['overdue'] else ''})"
            for h in self.held
        ]
        lines += [str(s) for s in self.skipped]
        lines += [f"problem: {p}" for p in self.problems]
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items())) or "nothing due"
        lines.append(f"purge{' (dry run)' if self.dry_run else ''} at {self.now}: {counts}")
        return "\n".join(lines)


def _one(
    ctx: Context, rec: query.Recording, hold: query.Hold | None, report: PurgeReport, *,
    dry_run: bool,
) -> Outcome:  # fmt: skip
    """Purge one expired recording (or report it held), counted in ``report``."""
    if hold is not None:
        outcome = Outcome(rec.uniqueid, rec.file, "held", hold.reason)
        overdue = is_overdue(hold, ctx.now.date())
        report.held.append({**hold.as_dict(), "file": rec.file, "overdue": overdue})
    elif dry_run:  # from the index alone: a real run re-reads each sidecar first
        outcome = Outcome(rec.uniqueid, rec.file, "would_delete", REASON)
    else:
        outcome = delete_recording(
            ctx, rec.uniqueid, rec.file, reason=REASON, source=SOURCE, expired_only=True
        )
    report.counts[outcome.action] = report.counts.get(outcome.action, 0) + 1
    if outcome.action == "skipped":
        report.skipped.append(outcome)
    return outcome


def purge(
    ctx: Context, *, dry_run: bool, on_item: Callable[[Outcome], None] | None = None
) -> PurgeReport:
    """Delete (or with ``dry_run`` list, from the index alone) every expired recording not on
    hold. ``on_item`` sees each outcome as it happens; the report keeps counts, holds and
    skipped items only, so memory stays flat however many recordings expire."""
    now = utc_stamp(ctx.now)
    report = PurgeReport(dry_run=dry_run, now=now)
    run_id = uuid.uuid4().hex
    deleted: list[str] = []
    ended: list[str] = []  # calls whose recording lost a purpose past its own retention

    def flush() -> None:
        if deleted:
            ctx.audit.write(
                "purge", actor=ctx.actor, at=ctx.now, reason=REASON, ids=deleted, run=run_id
            )
            deleted.clear()

    with ctx.index.locked():
        try:
            ctx.index.update()
        except DiskFull as exc:  # purge frees space: go on from what the index knows
            report.problems.append(f"{exc}; index not updated, purging what it already knows")
        require_recordings(ctx.index, ctx.recordings_dir)
        report.problems += [str(p) for p in ctx.index.problems()]
        report.problems += [
            f"{ctx.recordings_dir / relative}: a symlink to {target}: its recordings are not "
            "purged (symlinks are never followed); move the folder back into the recordings folder"
            for relative, target in iter_symlinked_folders(ctx.recordings_dir)
        ]
        holds = query.holds(ctx.index)
        elsewhere = holds_outside_ledger(ctx, holds)
        report.problems += [f"{u}: {h.reason}" for u, h in elsewhere.items()]
        holds = {**elsewhere, **holds}
        for outcome in expire_purposes(ctx, set(holds), dry_run=dry_run):  # each its own date
            report.counts[outcome.action] = report.counts.get(outcome.action, 0) + 1
            if outcome.action == "skipped":
                report.skipped.append(outcome)
            elif outcome.action == ENDED:
                ended.append(outcome.call_id)
            if on_item is not None:
                on_item(outcome)
        if ended:
            ctx.audit.write(
                "purge_purposes", actor=ctx.actor, at=ctx.now, reason=REASON, ids=ended, run=run_id
            )
        leftovers = query.interrupted_deletions(ctx.index)
        due = itertools.chain(leftovers, query.expired(ctx.index, now))
        while batch := list(itertools.islice(due, AUDIT_CHUNK)):
            starting = [r.uniqueid for r in batch if r.uniqueid not in holds]
            if starting and not dry_run:  # on the audit log before any of them is touched
                ctx.audit.write(
                    "purge_batch", actor=ctx.actor, at=ctx.now, reason=REASON, ids=starting,
                    run=run_id, status="starting",
                )  # fmt: skip
            for rec in batch:
                outcome = _one(ctx, rec, holds.get(rec.uniqueid), report, dry_run=dry_run)
                if outcome.action in ("deleted", "completed"):
                    deleted.append(rec.uniqueid)
                if on_item is not None:
                    on_item(outcome)
            flush()  # the batch's outcome, before the next batch starts
    if dry_run:
        ctx.audit.write(
            "purge_dry_run",
            actor=ctx.actor,
            at=ctx.now,
            reason=REASON,
            ids=[],
            run=run_id,
            counts=report.counts,
        )
    return report
