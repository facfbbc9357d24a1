"""Retention per purpose (R25): in a recording kept for several purposes, each purpose ends at
its own deadline, as its notice said.

The shipped ``support`` route records one file for documentation (90 days) and training (30
days); the training notice says "slettes senest efter 30 dage". Run by the purge before it
deletes whole files: for each multi-purpose recording not on hold whose sidecar (re-read with
full validation) has a purpose past ``recording.started_at + retention_days`` while another
purpose is not, a ``purpose_expired`` ledger entry (the purposes ended and kept, the new
``delete_after``) is written first, then the sidecar without those purposes, their
``purpose:`` tags (and ``consent:`` tags when no consent purpose is left) and their
``agent_purposes``; the index row follows, so listings by purpose no longer show it. The audio
stays for the remaining purposes until their own deadline, when the purge deletes the file.
A crash between the entry and the sidecar leaves the change to the next run (the entry may
repeat; none is lost). ``dry_run`` writes nothing.

Candidates come from the index: recordings with more than one purpose (a ``,`` in the index's
purpose list) that are not tombstones, a page at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from callconsent.evidence import sidecar
from callconsent.evidence.fsio import MalformedDocument, utc_stamp
from callconsent.evidence.ledger import LedgerEntryInvalid
from callconsent.evidence.paths import UnsafeIdentifier
from callconsent.evidence.purposes import expired_purposes, without_purposes
from callconsent.lifecycle._context import Context
from callconsent.lifecycle._delete import Outcome

ENTRY_TYPE: Final = "purpose_expired"
ENDED: Final = "purpose_expired"
WOULD_END: Final = "would_expire_purpose"


def _candidates(ctx: Context, *, page: int = 1000) -> Iterator[tuple[str, str]]:
    last = ""
    while True:
        rows = ctx.index.db.execute(
            "SELECT uniqueid, file FROM recordings WHERE purposes LIKE '%,%' "
            "AND state != 'tombstone' AND uniqueid > ? ORDER BY uniqueid LIMIT ?",
            (last, page),
        ).fetchall()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def expire_purposes(ctx: Context, holds: set[str], *, dry_run: bool) -> Iterator[Outcome]:
    """End every purpose past its own retention in recordings kept for several purposes (see
    the module docstring). Call with the index locked; ``holds``: call ids on legal hold."""
    for uniqueid, file in list(_candidates(ctx)):
        outcome = _expire_one(ctx, uniqueid, file, held=uniqueid in holds, dry_run=dry_run)
        if outcome is not None:
            yield outcome


def _expire_one(
    ctx: Context, uniqueid: str, file: str, *, held: bool, dry_run: bool
) -> Outcome | None:
    try:
        paths = ctx.paths(file)
        doc: dict[str, Any] = sidecar.load(paths)
    except (UnsafeIdentifier, FileNotFoundError, MalformedDocument) as exc:
        return Outcome(uniqueid, file, "skipped", f"{type(exc).__name__}: {exc}")
    if doc["state"] != sidecar.State.FINAL:
        return None  # still recording, or gone: nothing ends before the file is complete
    ended = expired_purposes(doc, ctx.now)
    if not ended:
        return None
    if held:
        return Outcome(uniqueid, file, "held", f"{', '.join(ended)} kept: legal hold")
    new = without_purposes(doc, ended, at=ctx.now)
    kept = [p["purpose"] for p in new["purposes"]]
    detail = f"{', '.join(ended)} ended; kept for {', '.join(kept)} until {new['delete_after']}"
    if dry_run:
        return Outcome(uniqueid, file, WOULD_END, detail)
    try:
        entry = ctx.ledger.append(
            {
                "type": ENTRY_TYPE,
                "at": utc_stamp(ctx.now),
                "call": {"uniqueid": uniqueid},
                "recording": file,
                "purposes": list(ended),
                "kept_purposes": kept,
                "delete_after": new["delete_after"],
                "reason": "retention",
                "source": "purge",
            }
        )
        ctx.index.add_ledger_entry(entry)
        sidecar.write(paths, new)
    except (OSError, LedgerEntryInvalid, sidecar.SidecarInvalid, MalformedDocument) as exc:
        return Outcome(uniqueid, file, "skipped", f"{type(exc).__name__}: {exc}")
    ctx.index.add_sidecar(paths, new)
    return Outcome(uniqueid, file, ENDED, detail)
