"""The lifecycle subcommands of ``callconsent``: index, purge, hold, export, identify, erase,
withdraw, ropa.

Wiring (in ``cli.build_parser``): ``lifecycle_commands.register(sub, with_config, _load)``.
Every subcommand has ``--help`` and ``--json``; exit codes: 0 ok, 1 problems found or items
held back / overdue, 2 usage or config error. ``--now`` (ISO 8601 with a zone) replaces the
clock, ``--actor`` names the person acting (default: the OS user); both go to the audit log.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from callconsent.clock import utc_now
from callconsent.lifecycle._context import Context
from callconsent.lifecycle._delete import Outcome
from callconsent.lifecycle.anonymise import DEFAULT_CLAIMS_DAYS

if TYPE_CHECKING:
    from callconsent.config import Config

OK, PROBLEMS, USAGE = 0, 1, 2
Handler = Callable[[argparse.Namespace], int]


class Progress:
    """Progress on stderr: a ``\\r`` counter on a terminal, a line every few seconds otherwise."""

    def __init__(self, stream: TextIO | None = None, every: float = 5.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.every = every
        self.last = -every

    def __call__(self, what: str, n: int) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write(f"\rindex: {n:>10,} {what}   ")
            self.stream.flush()
        elif now - self.last >= self.every:
            self.stream.write(f"index: {n:,} {what}\n")
            self.last = now

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")


def _now(text: str | None) -> datetime:
    if text is None:
        return utc_now()
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"--now {text!r} needs a time zone, e.g. 2026-04-06T03:00:00Z")
    return moment.astimezone(UTC)


def _day(text: str) -> date:
    return date.fromisoformat(text)


def _bound(text: str | None, *, end: bool) -> str | None:
    """``--from``/``--to`` as a stamp: a date means that whole day (``--to`` inclusive)."""
    if text is None:
        return None
    if len(text) == 10:
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        moment += timedelta(days=1) if end else timedelta(0)
    else:
        moment = _now(text)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _emit(args: argparse.Namespace, data: dict[str, Any] | list[Any], text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], None],
    load: Callable[[Path], Config],
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
                args.now_dt = _now(args.now)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return USAGE
            return run(args, load(args.config))

        parser.set_defaults(run=handler)

    from callconsent.lifecycle import _handlers as h

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
    q.add_argument("--review-date", required=True, type=_day, help="YYYY-MM-DD")
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
    p.add_argument("--request-date", type=_day, help="date of the request (YYYY-MM-DD)")
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


def context(args: argparse.Namespace, config: Config) -> Context:
    return Context.from_config(config, now=args.now_dt, actor=getattr(args, "actor", None))


def print_outcome(args: argparse.Namespace) -> Callable[[Outcome], None] | None:
    if args.json:
        return None
    return lambda o: print(str(o)) if o.action not in ("held", "skipped") else None
