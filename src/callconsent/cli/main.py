"""The ``callconsent`` command. Each subcommand is a thin shell over a module that does the job.

Exit codes: 0 success, 1 the job found problems (e.g. verify mismatches), 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from callconsent import __version__
from callconsent.cli import agent, keys
from callconsent.cli._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    add_config_option,
    load_or_exit,
)
from callconsent.config import Config, check_config_main
from callconsent.lifecycle import commands as lifecycle_commands


def _serve(args: argparse.Namespace) -> int:
    from callconsent import app, logs

    logs.configure(args.log_level, json=not args.console_log)
    from callconsent.withdrawal.features_check import withdraw_feature_warnings

    config = load_or_exit(args.config)
    for warning in [*config.warnings, *withdraw_feature_warnings(config, args.features_conf)]:
        print(f"warning: {warning}", file=sys.stderr)
    if _archive_errors(config):  # a notice edited under its old version (R20)
        return EXIT_USAGE
    asyncio.run(app.serve(config))
    return EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    from callconsent.notice_archive import archive_conflicts
    from callconsent.withdrawal.features_check import withdraw_feature_warnings

    code = check_config_main(args.file, archive_conflicts)  # notice versions (R20)
    if code == EXIT_OK:  # the in-call withdrawal code in features.conf (R16)
        for warning in withdraw_feature_warnings(load_or_exit(args.file), args.features_conf):
            print(f"warning: {warning}")
    return code


def _archive_errors(config: Config) -> bool:
    """Print every notice that changed purpose, basis or retention under an archived version."""
    from callconsent.notice_archive import archive_conflicts

    errors = archive_conflicts(config)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        print(f"FAILED: {config.path} ({len(errors)} error(s))", file=sys.stderr)
    return bool(errors)


def _prompts(args: argparse.Namespace) -> int:
    from callconsent.agents.own_consent_adapter import prompt_sources as agent_self_prompts
    from callconsent.prompts import PromptBuildError, archive_notices, build_prompts, build_sources
    from callconsent.whisper import build_whispers
    from callconsent.withdrawal.route import prompt_sources as route_prompts

    config = load_or_exit(args.config)
    try:
        built = build_prompts(config, force=args.force)
        built += build_whispers(config, force=args.force)
        built += build_sources(
            config.prompts_dir, route_prompts(), force=args.force, wpm=config.tts_words_per_minute
        )  # R17
        built += build_sources(
            config.prompts_dir,
            agent_self_prompts(),
            force=args.force,
            wpm=config.tts_words_per_minute,
        )  # the agent's own consent (R15)
        archive_notices(config)
    except PromptBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    for path in built:
        print(f"built {path}")
    print(f"{len(built)} prompt(s) built; notices archived in {config.storage.notice_archive_dir}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from callconsent.lifecycle.verify import verify

    config = load_or_exit(args.config)
    report = verify(config.storage.recordings_dir, config.storage.ledger_path, deep=args.deep)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.summary())
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _reconcile(args: argparse.Namespace) -> int:
    from callconsent.lifecycle.reconcile import reconcile_main

    config = load_or_exit(args.config)
    stale_after = timedelta(minutes=args.stale_after_minutes)
    result: int = reconcile_main(
        config, dry_run=args.dry_run, as_json=args.json, stale_after=stale_after
    )
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callconsent",
        description="Lawful call recording for Asterisk: notice, active consent, evidence.",
    )
    parser.add_argument("--version", action="version", version=f"callconsent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def features_conf(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--features-conf",
            type=Path,
            default=Path("/etc/asterisk/features.conf"),
            help="Asterisk's features.conf, to check the in-call withdrawal code against the "
            "config (default: %(default)s)",
        )

    p = sub.add_parser(
        "serve",
        help="run the Stasis app and the FastAGI server (config agi) in the foreground "
        "(stops on SIGTERM)",
    )
    add_config_option(p)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--console-log", action="store_true", help="human-readable logs, not JSON")
    features_conf(p)
    p.set_defaults(run=_serve)

    p = sub.add_parser("check-config", help="validate a config file and print the verdict")
    p.add_argument("file", type=Path)
    features_conf(p)
    p.set_defaults(run=_check_config)

    p = sub.add_parser("prompts", help="generate missing prompt audio and archive notice versions")
    add_config_option(p)
    p.add_argument("--force", action="store_true", help="regenerate every prompt")
    p.set_defaults(run=_prompts)

    p = sub.add_parser("verify", help="check every recording's sha256 and the ledger hash chain")
    add_config_option(p)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--deep",
        action="store_true",
        help="also validate every sidecar and ledger entry against the JSON Schemas",
    )
    p.set_defaults(run=_verify)

    p = sub.add_parser("reconcile", help="repair what a crash left: unfinished sidecars, headers")
    add_config_option(p)
    p.add_argument("--dry-run", action="store_true", help="report, change nothing")
    p.add_argument(
        "--stale-after-minutes",
        type=float,
        default=360.0,
        help="touch only recordings untouched this long (default %(default)s; after an Asterisk "
        "crash, with no call in progress, 0 is safe)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_reconcile)

    agent.register(sub)
    keys.register(sub)  # decrypt, rewrap (R33)
    lifecycle_commands.register(sub, add_config_option, load_or_exit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.run is not _serve:  # stdout is the command's report (--json too): log lines to
        from callconsent import logs  # stderr, warnings and worse (serve configures its own)

        logs.configure("warning", json=False)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
