"""Consent evidence after retention + the claims period (R21): the ``anonymise`` step.

The ledger is append-only and hash-chained, so a line cannot be edited without breaking the
chain. What this step does instead, for every call whose evidence has outlived the longest
retention of its purposes plus ``claims_days`` (and that is not on hold and has no recording
left): it appends an ``anonymised`` ledger entry listing those call ids and the fields
(``caller_number``, ``caller_name``) that are from then on treated as removed, after destroying
those calls' caller keys (:meth:`~.index.Index.forget`). The ``call`` entries hold the number
and name only sealed under those keys (:mod:`callconsent.evidence.callers`), so from then on
nobody can read them, nor test a guessed number against them; the ledger bytes, the chain and
``verify`` stay as they were. The index drops the subject at once; lookups by number no longer
find the calls and exports omit the fields.

Ledgers written before callers were sealed hold the number and name of their ``call`` entries
in clear: for those lines the entry remains a mark only (the index and exports drop the fields);
removing the values from such a file needs ledger rotation (a new ledger with the fields
nulled, re-chained and anchored to the old head, then the old file and its backups
destroyed), which is not built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from callconsent.evidence.fsio import utc_stamp
from callconsent.lifecycle._context import MIN_YEAR, Context
from callconsent.lifecycle._schema import ANONYMISED
from callconsent.lifecycle.errors import LifecycleError
from callconsent.lifecycle.kept_exports import drop_kept

SOURCE: Final = "purge"
FIELDS: Final = ("caller_number", "caller_name")
#: Default claims period: the general Danish limitation period (forældelsesloven § 3), 3 years.
DEFAULT_CLAIMS_DAYS: Final = 3 * 365
BATCH: Final = 500
#: The longest claims period accepted (100 years): longer is a typo, not a policy.
MAX_CLAIMS_DAYS: Final = 36_500


@dataclass(slots=True)
class AnonymiseReport:
    dry_run: bool
    claims_days: int
    calls: int = 0
    entries: list[int] = field(default_factory=list)  # ledger seqs written
    kept_held: int = 0
    kept_recording: int = 0
    exports_deleted: list[str] = field(default_factory=list)  # kept archives of those calls

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "claims_days": self.claims_days,
            "calls": self.calls,
            "ledger_seqs": self.entries,
            "kept_held": self.kept_held,
            "kept_recording": self.kept_recording,
            "exports_deleted": self.exports_deleted,
        }

    def summary(self) -> str:
        verb = "would anonymise" if self.dry_run else "anonymised"
        return (
            f"evidence: {verb} {self.calls} call(s) past retention + {self.claims_days} "
            f"claims days; kept {self.kept_held} held, {self.kept_recording} with a "
            "recording still present"
            + (
                f"; {len(self.exports_deleted)} kept export(s) deleted"
                if self.exports_deleted
                else ""
            )
        )


def claims_cutoff(ctx: Context, claims_days: int) -> str:
    """The stamp ``claims_days`` before the run's time; :class:`LifecycleError` if out of range."""
    if not 0 <= claims_days <= MAX_CLAIMS_DAYS:
        raise LifecycleError(
            f"--claims-days {claims_days}: must be between 0 and {MAX_CLAIMS_DAYS} (100 years)"
        )
    moment = ctx.now - timedelta(days=claims_days)
    if moment.year < MIN_YEAR:
        raise LifecycleError(
            f"--claims-days {claims_days} before {utc_stamp(ctx.now)} reaches before {MIN_YEAR}"
        )
    return utc_stamp(moment)


def anonymise(
    ctx: Context,
    *,
    claims_days: int = DEFAULT_CLAIMS_DAYS,
    dry_run: bool = False,
    reason: str = "evidence_retention",
    on_batch: Callable[[list[str]], None] | None = None,
) -> AnonymiseReport:
    """Write ``anonymised`` entries for calls whose consent evidence is no longer needed."""
    report = AnonymiseReport(dry_run=dry_run, claims_days=claims_days)
    cutoff = claims_cutoff(ctx, claims_days)
    with ctx.index.locked():
        ctx.index.update()
        rows = ctx.index.db.execute(
            "SELECT c.uniqueid, h.uniqueid IS NOT NULL, r.state FROM calls c "
            "LEFT JOIN holds h ON h.uniqueid = c.uniqueid "
            "LEFT JOIN recordings r ON r.uniqueid = c.uniqueid "
            "WHERE c.anonymised = 0 AND (c.subject IS NOT NULL OR c.caller_kid IS NOT NULL)"
            " AND strftime('%Y-%m-%dT%H:%M:%S.000Z', julianday(substr(c.at, 1, 19)) "
            "+ c.retention_days) <= ? ORDER BY c.seq",
            (cutoff,),
        ).fetchall()
        batch: list[str] = []
        for call_id, held, state in rows:
            if held:
                report.kept_held += 1
            elif state in ("recording", "final"):
                report.kept_recording += 1
            else:
                batch.append(call_id)
                if len(batch) >= BATCH:
                    _write(ctx, batch, report, reason, on_batch)
        _write(ctx, batch, report, reason, on_batch)
    return report


def anonymise_calls(ctx: Context, call_ids: list[str], *, reason: str) -> list[int]:
    """Write ``anonymised`` entries for ``call_ids`` now (erasure); return the ledger seqs."""
    report = AnonymiseReport(dry_run=False, claims_days=0)
    batch = list(call_ids)
    while batch:
        _write(ctx, batch[:BATCH], report, reason, None)
        del batch[:BATCH]
    return report.entries


def _write(
    ctx: Context,
    batch: list[str],
    report: AnonymiseReport,
    reason: str,
    on_batch: Callable[[list[str]], None] | None,
) -> None:
    if not batch:
        return
    report.calls += len(batch)
    if not report.dry_run:
        # the keys first: a run cut short here leaves calls forgotten but not yet marked (the
        # next run marks them), never marked but still readable
        destroyed = ctx.index.forget(batch)
        exports = drop_kept(ctx, batch)  # the archives handed out hold them in clear
        report.exports_deleted += exports
        entry = ctx.append(
            {
                "type": ANONYMISED,
                "at": utc_stamp(ctx.now),
                "calls": list(batch),
                "fields": list(FIELDS),
                "reason": reason,
                "claims_days": report.claims_days,
                "source": "erase" if reason == "erased" else SOURCE,
            }
        )
        ctx.index.add_ledger_entry(entry)
        report.entries.append(entry["seq"])
        ctx.audit.write(
            "anonymise",
            actor=ctx.actor,
            at=ctx.now,
            reason=reason,
            ids=batch,
            ledger_seq=entry["seq"],
            caller_keys_destroyed=destroyed,
            exports_deleted=exports,
        )
    if on_batch is not None:
        on_batch(list(batch))
    batch.clear()
