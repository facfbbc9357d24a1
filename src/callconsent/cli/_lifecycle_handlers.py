"""The handlers of the lifecycle subcommands (registered in :mod:`.lifecycle`): run the job,
print the report, return the exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from callconsent.cli._common import EXIT_OK as OK
from callconsent.cli._common import EXIT_PROBLEMS as PROBLEMS
from callconsent.cli._common import Progress, emit, fail, parse_bound
from callconsent.clock import utc_now
from callconsent.lifecycle import Context, Outcome, kept_exports, query
from callconsent.lifecycle.anonymise import anonymise, claims_cutoff
from callconsent.lifecycle.erase import EraseError, erase
from callconsent.lifecycle.export import ExportError, export
from callconsent.lifecycle.hold import (
    HoldError,
    HoldsUnknown,
    list_holds,
    release_hold,
    set_hold,
)
from callconsent.lifecycle.identify import identify
from callconsent.lifecycle.presence import RecordingsUnavailable
from callconsent.lifecycle.purge import purge
from callconsent.lifecycle.ropa import build_ropa, to_markdown
from callconsent.lifecycle.withdraw import Scope, WithdrawError, withdraw

if TYPE_CHECKING:
    from callconsent.config import Config


def context(args: argparse.Namespace, config: Config) -> Context:
    return Context.from_config(config, now=args.now_dt, actor=getattr(args, "actor", None))


def print_outcome(args: argparse.Namespace) -> Callable[[Outcome], None] | None:
    if args.json:
        return None
    return lambda o: print(str(o)) if o.action not in ("held", "skipped") else None


def _index(args: argparse.Namespace, config: Config, rebuild: bool) -> int:
    progress = Progress()
    with context(args, config) as ctx, ctx.index.locked():
        run = ctx.index.rebuild if rebuild else ctx.index.update
        stats = run(progress=progress, on_problem=lambda p: print(p, file=sys.stderr))
        progress.done()
    emit(
        args,
        stats.as_dict(),
        f"index {'rebuilt' if rebuild else 'updated'}: "
        f"{stats.sidecars} sidecar(s), {stats.ledger_lines} ledger line(s), "
        f"{stats.problems} problem(s) skipped -> {ctx.index.path}",
    )
    return PROBLEMS if stats.problems else OK


def index_rebuild(args: argparse.Namespace, config: Config) -> int:
    return _index(args, config, rebuild=True)


def index_update(args: argparse.Namespace, config: Config) -> int:
    return _index(args, config, rebuild=False)


def purge_cmd(args: argparse.Namespace, config: Config) -> int:
    with context(args, config) as ctx:
        if not args.no_anonymise:  # a bad --claims-days stops the run before anything is deleted
            claims_cutoff(ctx, args.claims_days)
        try:
            report = purge(ctx, dry_run=args.dry_run, on_item=print_outcome(args))
        except (RecordingsUnavailable, HoldsUnknown) as exc:
            return fail(exc)
        evidence = None
        if not args.no_anonymise:
            evidence = anonymise(ctx, claims_days=args.claims_days, dry_run=args.dry_run)
    data = {**report.as_dict(), "evidence": evidence.as_dict() if evidence else None}
    text = report.summary() + (f"\n{evidence.summary()}" if evidence else "")
    emit(args, data, text)
    return OK if report.clean else PROBLEMS


def hold_set(args: argparse.Namespace, config: Config) -> int:
    with context(args, config) as ctx:
        try:
            hold = set_hold(
                ctx,
                args.call_id,
                reason=args.reason,
                case_ref=args.case_ref,
                review_date=args.review_date,
            )
        except HoldError as exc:
            return fail(exc)
    emit(
        args,
        hold.as_dict(),
        f"hold set on {hold.uniqueid}: {hold.reason} "
        f"(case {hold.case_ref}, review {hold.review_date})",
    )
    return OK


def hold_release(args: argparse.Namespace, config: Config) -> int:
    with context(args, config) as ctx:
        try:
            hold = release_hold(ctx, args.call_id, reason=args.reason)
        except HoldError as exc:
            return fail(exc)
    emit(
        args,
        hold.as_dict(),
        f"hold released on {hold.uniqueid} (was: {hold.reason}, case {hold.case_ref})",
    )
    return OK


def hold_list(args: argparse.Namespace, config: Config) -> int:
    with context(args, config) as ctx:
        found = list_holds(ctx, overdue_only=args.overdue)
    lines = [
        f"{s.hold.uniqueid}: {s.hold.reason} (case {s.hold.case_ref}, review "
        f"{s.hold.review_date}{', OVERDUE' if s.overdue else ''}, set {s.hold.set_at} by "
        f"{s.hold.actor})"
        for s in found
    ]
    lines.append(f"{len(found)} hold(s), {sum(s.overdue for s in found)} overdue")
    emit(args, [s.as_dict() for s in found], "\n".join(lines))
    return PROBLEMS if args.overdue and found else OK


def _selector(args: argparse.Namespace) -> query.Selector:
    return query.Selector(
        number=args.number,
        call_id=args.call_id,
        date_from=parse_bound(getattr(args, "date_from", None), end=False),
        date_to=parse_bound(getattr(args, "date_to", None), end=True),
        agent=getattr(args, "agent", None),
    )


def export_cmd(args: argparse.Namespace, config: Config) -> int:
    with context(args, config) as ctx:
        out = args.out or kept_exports.default_folder(ctx.ledger_path)
        try:
            result = export(
                ctx,
                config,
                _selector(args),
                reason=args.reason,
                out_dir=out,
                include_held=args.include_held,
                identity_check=args.identity_check,
                request_date=args.request_date,
            )
        except (ExportError, ValueError, RecordingsUnavailable) as exc:
            return fail(exc)
    emit(args, result.as_dict(), result.summary())
    return PROBLEMS if result.withheld or result.problems else OK


def identify_cmd(args: argparse.Namespace, config: Config) -> int:
    if not args.file.is_file():
        return fail(FileNotFoundError(f"{args.file}: no such file"))
    with context(args, config) as ctx:
        found = identify(ctx, args.file)
    emit(args, found.as_dict(), found.summary())
    return OK if found.found else PROBLEMS


def erase_cmd(args: argparse.Namespace, config: Config) -> int:
    with context(args, config) as ctx:
        try:
            report = erase(
                ctx,
                _selector(args),
                reason=args.reason,
                dry_run=args.dry_run,
                anonymise_evidence=args.anonymise_evidence,
            )
        except (EraseError, RecordingsUnavailable, HoldsUnknown) as exc:
            return fail(exc)
    emit(args, report.as_dict(), report.summary())
    return OK if report.complete else PROBLEMS


def withdraw_cmd(args: argparse.Namespace, config: Config) -> int:
    from callconsent.lifecycle.live_stop import (
        stop_live_recordings,  # AMI only when a call is still up
    )

    scope = Scope(number=args.number, call_ref=args.call_ref, call_id=args.call_id)
    with context(args, config) as ctx:
        try:
            report = withdraw(ctx, scope, reason=args.reason, dry_run=args.dry_run)
        except (WithdrawError, RecordingsUnavailable, HoldsUnknown) as exc:
            return fail(exc)
    if not report.call_ids and not report.ambiguous:
        return fail("no calls found for the given number or call: nothing was withdrawn")
    live = [i.call_id for i in report.items if i.live and i.action == "deleted"]
    stops = stop_live_recordings(config, live)  # R16: stop what Asterisk is still recording
    data = {**report.as_dict(), "recording_stops": [s.as_dict() for s in stops]}
    emit(args, data, "\n".join([report.summary(), *map(str, stops)]))
    return OK if report.complete and all(s.ok for s in stops) else PROBLEMS


def ropa_cmd(args: argparse.Namespace, config: Config) -> int:
    with context(args, config) as ctx:
        record = build_ropa(ctx, config, claims_days=args.claims_days)
    emit(args, record, to_markdown(record))
    return PROBLEMS if record["flags"] else OK


def verify_cmd(args: argparse.Namespace, config: Config) -> int:
    from callconsent.evidence.anchor import default_anchor_path
    from callconsent.lifecycle.verify import verify

    s = config.storage
    anchor = s.anchor_path or default_anchor_path(s.ledger_path)
    report = verify(s.recordings_dir, s.ledger_path, anchor_path=anchor, deep=args.deep)
    emit(args, report.as_dict(), report.summary())
    return OK if report.ok else PROBLEMS


def reconcile_cmd(args: argparse.Namespace, config: Config) -> int:
    from callconsent.encryption import at_rest_for
    from callconsent.evidence.ledger import Ledger
    from callconsent.lifecycle.reconcile import reconcile

    report = reconcile(
        config.storage.recordings_dir,
        Ledger(config.storage.ledger_path, anchor_path=config.storage.anchor_path),
        now=utc_now(),
        dry_run=args.dry_run,
        stale_after=timedelta(minutes=args.stale_after_minutes),
        at_rest=at_rest_for(config),  # a recording the app did not encrypt before it stopped
        spool_dir=config.storage.spool_dir,  # what MixMonitor left in the spool
    )
    emit(args, report.as_dict(), report.summary())
    return OK if report.clean else PROBLEMS
