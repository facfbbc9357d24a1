"""Legal hold (R26): a held recording is never purged or erased until the hold is released.

The ledger is the durable record and the audit trail: ``hold_set`` (call, reason, case
reference, review date, actor) and ``hold_released`` (call, reason, actor) entries. The index's
``holds`` table is derived from them, so ``index rebuild`` restores every hold. Every action also
writes an audit line. A hold whose review date has passed is *overdue*: ``hold list --overdue``
reports it (exit 1), and so does ``purge``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from callconsent.evidence.anchor import AnchorUnreadable, read_anchor
from callconsent.evidence.fsio import utc_stamp
from callconsent.lifecycle import query
from callconsent.lifecycle._context import Context
from callconsent.lifecycle._schema import HOLD_RELEASED, HOLD_SET
from callconsent.lifecycle.audit import os_user
from callconsent.lifecycle.errors import LifecycleError
from callconsent.lifecycle.presence import ledger_says_deleted
from callconsent.lifecycle.query import Hold

SOURCE = "hold"


class HoldError(LifecycleError):
    """A hold request that cannot be carried out (unknown call, not held)."""


class HoldsUnknown(Exception):
    """A record of holds (audit log, anchor) cannot be read: nothing may be deleted."""


@dataclass(frozen=True, slots=True)
class HoldStatus:
    hold: Hold
    overdue: bool

    def as_dict(self) -> dict[str, Any]:
        return {**self.hold.as_dict(), "overdue": self.overdue}


def is_overdue(hold: Hold, today: date) -> bool:
    try:
        return date.fromisoformat(hold.review_date) < today
    except ValueError:  # an unreadable date in the ledger: treat as due for review
        return True


def set_hold(ctx: Context, call_id: str, *, reason: str, case_ref: str, review_date: date) -> Hold:
    """Put call ``call_id`` on hold (or replace its hold). The call must be known."""
    if not reason.strip() or not case_ref.strip():
        raise HoldError("a hold needs a reason and a case reference")
    with ctx.index.locked():
        ctx.index.update()
        if not query.known_call(ctx.index, call_id):
            raise HoldError(f"unknown call id {call_id!r} (not in the ledger or any sidecar)")
        rec = query.recording(ctx.index, call_id)
        if rec is not None and (
            rec.state == "tombstone" or ledger_says_deleted(ctx.index, rec.uniqueid)
        ):
            raise HoldError(
                f"the recording of call {call_id!r} was already deleted "
                f"({rec.deleted_reason or 'deleted line in the ledger'}): there is nothing to "
                "hold; no hold was set"
            )
        actor = ctx.actor or os_user()
        entry = ctx.append(
            {
                "type": HOLD_SET,
                "at": utc_stamp(ctx.now),
                "call": {"uniqueid": call_id},
                "reason": reason,
                "case_ref": case_ref,
                "review_date": review_date.isoformat(),
                "actor": actor,
                "source": SOURCE,
            }
        )
        ctx.index.add_ledger_entry(entry)
    ctx.audit.write(
        "hold_set",
        actor=actor,
        at=ctx.now,
        reason=reason,
        ids=[call_id],
        case_ref=case_ref,
        review_date=review_date.isoformat(),
        ledger_seq=entry["seq"],
    )
    return query.holds(ctx.index)[call_id]


def release_hold(ctx: Context, call_id: str, *, reason: str) -> Hold:
    """Release the hold on ``call_id``; the next purge deletes it if its time has come."""
    with ctx.index.locked():
        ctx.index.update()
        held = query.holds(ctx.index).get(call_id)
        if held is None:
            raise HoldError(f"call {call_id!r} is not on hold")
        actor = ctx.actor or os_user()
        entry = ctx.append(
            {
                "type": HOLD_RELEASED,
                "at": utc_stamp(ctx.now),
                "call": {"uniqueid": call_id},
                "reason": reason,
                "actor": actor,
                "source": SOURCE,
            }
        )
        ctx.index.add_ledger_entry(entry)
    ctx.audit.write(
        "hold_released",
        actor=actor,
        at=ctx.now,
        reason=reason,
        ids=[call_id],
        case_ref=held.case_ref,
        ledger_seq=entry["seq"],
    )
    return held


def holds_outside_ledger(ctx: Context, in_ledger: Mapping[str, Hold]) -> dict[str, Hold]:
    """Holds the audit log or the ledger's anchor records and the ledger (``in_ledger``) does
    not: a ledger cut back past a ``hold_set`` line must not free the recording. Each comes as a
    :class:`Hold` whose reason says where it was found; the purge keeps them and says so.
    :class:`HoldsUnknown` when either cannot be read (fail safe: the job deletes nothing)."""
    found: dict[str, Hold] = {}
    for uniqueid, line in _audit_holds(ctx.audit.path).items():
        if uniqueid not in in_ledger:
            found[uniqueid] = Hold(
                uniqueid,
                f"hold recorded in the audit log ({line.get('reason')}) but not in the ledger: "
                "kept; check the ledger (verify)",
                str(line.get("case_ref")),
                str(line.get("review_date")),
                str(line.get("actor")),
                str(line.get("at")),
                None,
            )
    try:
        anchor = read_anchor(ctx.ledger.anchor_path)
    except (OSError, AnchorUnreadable) as exc:
        raise HoldsUnknown(
            f"cannot read the ledger anchor {ctx.ledger.anchor_path} ({exc}): holds recorded "
            "there cannot be checked, so nothing was deleted; run callconsent verify"
        ) from None
    for uniqueid in sorted(anchor.holds if anchor else ()):
        if uniqueid not in in_ledger and uniqueid not in found:
            found[uniqueid] = Hold(
                uniqueid,
                f"hold recorded in the ledger anchor {ctx.ledger.anchor_path} but not in the "
                "ledger: kept; check the ledger (verify)",
                "?",
                "?",
                None,
                "?",
                None,
            )
    return found


def _audit_holds(path: Path) -> dict[str, dict[str, Any]]:
    """The calls on hold per the audit log's hold_set / hold_released lines (streamed)."""
    held: dict[str, dict[str, Any]] = {}
    try:
        with path.open("rb") as f:
            for raw in f:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(line, dict) or not isinstance(line.get("ids"), list):
                    continue
                for uniqueid in line["ids"]:
                    if not isinstance(uniqueid, str):
                        continue
                    if line.get("action") == "hold_set":
                        held[uniqueid] = line
                    elif line.get("action") == "hold_released":
                        held.pop(uniqueid, None)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise HoldsUnknown(
            f"cannot read the audit log {path} ({exc.strerror or exc}): holds recorded there "
            "cannot be checked, so nothing was deleted"
        ) from None
    return held


def list_holds(ctx: Context, *, overdue_only: bool = False) -> list[HoldStatus]:
    """Every current hold (or only overdue ones), earliest review date first. Audited."""
    with ctx.index.locked(shared=True):
        ctx.index.update()
        today = ctx.now.date()
        found = [HoldStatus(h, is_overdue(h, today)) for h in query.holds(ctx.index).values()]
    if overdue_only:
        found = [s for s in found if s.overdue]
    ctx.audit.write(
        "hold_list",
        actor=ctx.actor,
        at=ctx.now,
        ids=[s.hold.uniqueid for s in found],
        overdue_only=overdue_only,
    )
    return found
