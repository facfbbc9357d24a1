"""The lifecycle subcommands of ``callconsent``: index, purge, hold, export, identify, erase,
withdraw, ropa, verify, reconcile. This module registers them; the handlers (run the job, print,
exit code) are in :mod:`._lifecycle_handlers`; what every subcommand shares (exit codes, output,
progress, time options) is in :mod:`._common`.

Every subcommand has ``--help`` and ``--json``; exit codes: 0 ok, 1 problems found or items
held back / overdue, 2 usage or config error or a refusal. ``--now`` (ISO 8601 with a zone)
replaces the clock, ``--actor`` names the person acting (default: the OS user); both go to the
audit log. None of them needs the ARI/AMI secret, except withdraw when a call is still recording.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from callconsent.cli import _lifecycle_handlers as h
from callconsent.cli._common import (
    add_config_option,
    fail,
    load_or_exit,
    parse_day,
    parse_now,
)
from callconsent.config import Config
from callconsent.lifecycle.anonymise import DEFAULT_CLAIMS_DAYS
from callconsent.lifecycle.errors import LifecycleError


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], None] = add_config_option,
    load: Callable[[Path], Config] = load_or_exit,
) -> None:
    """Add the lifecycle subcommands to the ``callconsent`` parser."""

    def command(
        parser: argparse.ArgumentParser,
        run: Callable[[argparse.Namespace, Config], int],
        *,
        actor: bool = True,
    ) -> None:
        with_config(parser)
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument("--now", help="act as if it were this time (ISO 8601 with a zone)")
        if actor:
            parser.add_argument(
                "--actor", help="who is acting, for the audit log (default: OS user)"
            )

        def handler(args: argparse.Namespace) -> int:
            try:
                args.now_dt = parse_now(args.now)
            except ValueError as exc:
                return fail(exc)
            try:
                return run(args, load(args.config))
            except LifecycleError as exc:  # every job's domain error: its message, exit 2
                return fail(exc)

        parser.set_defaults(run=handler)

    p = subparsers.add_parser("index", help="the lifecycle index (SQLite) of sidecars and ledger")
    sub = p.add_subparsers(dest="index_command", required=True)
    q = sub.add_parser("rebuild", help="recreate the index from the sidecars and the ledger")
    command(q, h.index_rebuild, actor=False)
    q = sub.add_parser("update", help="ingest new ledger lines and changed day folders")
    command(q, h.index_update, actor=False)

    p = subparsers.add_parser("purge", help="delete recordings past delete_after (not on hold)")
    p.add_argument("--dry-run", action="store_true", help="list what is due, change nothing")
    p.add_argument(
        "--claims-days",
        type=int,
        default=DEFAULT_CLAIMS_DAYS,
        help="claims period after retention before consent evidence is anonymised "
        "(default: %(default)s)",
    )
    p.add_argument("--no-anonymise", action="store_true", help="skip the evidence step")
    command(p, h.purge_cmd)

    p = subparsers.add_parser("hold", help="legal hold: set, release, list")
    sub = p.add_subparsers(dest="hold_command", required=True)
    q = sub.add_parser("set", help="put a call's recording on hold (never purged or erased)")
    q.add_argument("--call-id", required=True)
    q.add_argument("--reason", required=True)
    q.add_argument("--case-ref", required=True)
    q.add_argument("--review-date", required=True, type=parse_day, help="YYYY-MM-DD")
    command(q, h.hold_set)
    q = sub.add_parser("release", help="release a hold; the next purge applies retention")
    q.add_argument("--call-id", required=True)
    q.add_argument("--reason", required=True)
    command(q, h.hold_release)
    q = sub.add_parser("list", help="current holds; --overdue: only past their review date")
    q.add_argument("--overdue", action="store_true", help="exit 1 if any hold is overdue")
    command(q, h.hold_list)

    def subject(q: argparse.ArgumentParser, *, ranges: bool) -> None:
        q.add_argument("--number", help="the caller number (CLI) as signalled")
        q.add_argument("--call-id", help="a call's uniqueid or linkedid")
        if ranges:
            q.add_argument("--from", dest="date_from", help="YYYY-MM-DD or ISO time (inclusive)")
            q.add_argument("--to", dest="date_to", help="YYYY-MM-DD (inclusive) or ISO time")
            q.add_argument("--agent", help="agent id (recordings tagged agent:<id>)")
        q.add_argument("--reason", required=True, help="why (ticket, request); no caller number")

    p = subparsers.add_parser(
        "export",
        help="subject access: one archive with audio, sidecars, "
        "ledger entries and a DA/EN cover sheet; never sent anywhere",
    )
    subject(p, ranges=True)
    p.add_argument(
        "--out", type=Path, help="folder for the archive (default: <ledger dir>/exports)"
    )
    p.add_argument("--include-held", action="store_true", help="include held recordings (legal)")
    p.add_argument("--identity-check", help="how the requester's identity was checked")
    p.add_argument("--request-date", type=parse_day, help="date of the request (YYYY-MM-DD)")
    command(p, h.export_cmd)

    p = subparsers.add_parser("identify", help="map a file back to its recording and export")
    p.add_argument("file", type=Path)
    command(p, h.identify_cmd)

    p = subparsers.add_parser("erase", help="erase a subject's or a call's recordings (holds kept)")
    subject(p, ranges=False)
    p.add_argument("--dry-run", action="store_true", help="list what would be erased")
    p.add_argument(
        "--anonymise-evidence",
        action="store_true",
        help="also mark the calls' consent evidence anonymised now",
    )
    command(p, h.erase_cmd)

    p = subparsers.add_parser(
        "withdraw",
        help="withdraw consent after (or during) the call: delete the consent-based "
        "(training) recordings in scope, keep documentation recordings for documentation only; "
        "a call still in progress also has its recording stopped over asterisk.ami",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--number", help="the caller number (CLI) as signalled")
    who.add_argument("--call-ref", help="the call reference the caller was given (9 digits)")
    who.add_argument("--call-id", help="a call's uniqueid or linkedid")
    p.add_argument(
        "--reason", required=True, help="the request (letter, e-mail, ticket); no caller number"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="report what would happen, change nothing"
    )
    command(p, h.withdraw_cmd)

    p = subparsers.add_parser("ropa", help="the Art 30 record of processing, with statistics")
    p.add_argument("--claims-days", type=int, default=DEFAULT_CLAIMS_DAYS)
    command(p, h.ropa_cmd)

    def without_clock(
        parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace, Config], int]
    ) -> None:  # verify and reconcile: no --now, no --actor (they write no audit line)
        with_config(parser)
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.set_defaults(run=lambda args: run(args, load(args.config)))

    p = subparsers.add_parser(
        "verify",
        help="check every recording's sha256, the ledger hash chain against its anchor, and "
        "the ledger's finished recordings against the disk",
    )
    p.add_argument(
        "--deep",
        action="store_true",
        help="also validate every sidecar and ledger entry against the JSON Schemas",
    )
    without_clock(p, h.verify_cmd)

    p = subparsers.add_parser(
        "reconcile", help="repair what a crash left: unfinished sidecars, headers"
    )
    p.add_argument("--dry-run", action="store_true", help="report, change nothing")
    p.add_argument(
        "--stale-after-minutes",
        type=float,
        default=360.0,
        help="touch only recordings untouched this long (default %(default)s; after an Asterisk "
        "crash, with no call in progress, 0 is safe)",
    )
    without_clock(p, h.reconcile_cmd)
