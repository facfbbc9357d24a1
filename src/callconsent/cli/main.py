"""The ``callconsent`` command. Each subcommand is a thin shell over a module that does the job.

Exit codes (:mod:`._common`): 0 success, 1 the job found problems (e.g. verify mismatches), 2 bad
config or usage. Only the commands that connect to Asterisk (serve, agent set/revoke/sync, withdraw
of a call in progress) read the ARI/AMI password.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from callconsent import __version__
from callconsent.cli import agent, keys, lifecycle, play
from callconsent.cli._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    add_config_option,
    load_or_exit,
)
from callconsent.config import Config, ConfigError, Secret, load_config, recording_prerequisites


def _secrets(config: Config) -> list[tuple[str, Secret]]:
    """The passwords of the Asterisk connections the config names."""
    found = [("ARI", config.asterisk.ari.password)]
    if config.asterisk.ami is not None:
        found.append(("AMI", config.asterisk.ami.password))
    return found


def _serve(args: argparse.Namespace) -> int:
    from callconsent import app, logs

    logs.configure(args.log_level, json=not args.console_log)
    config = load_or_exit(args.config)
    missing = [problem for _, s in _secrets(config) if (problem := s.problem())]
    if missing:  # serve is a command that connects: it needs both secrets now
        for problem in missing:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    required = recording_prerequisites(config)
    if required:  # R1, R2: no recording without the party watch
        for line in required:
            print(f"error: {line}", file=sys.stderr)
        print("serve: refusing to start", file=sys.stderr)
        return EXIT_USAGE
    for warning in [
        *config.warnings,
        *_feature_warnings(config, args.features_conf),
        *_bypass_warnings(args),
    ]:
        print(f"warning: {warning}", file=sys.stderr)
    refused = _recordings_folder_refused(config.storage.recordings_dir) or _spool_refused(config)
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return EXIT_USAGE
    if _archive_errors(config):  # a notice edited under its old version (R20)
        return EXIT_USAGE
    _run_live(app.serve(config))
    return EXIT_OK


def _run_live(main: Coroutine[Any, Any, None]) -> None:
    """Run the live app on uvloop's event loop: about a fifth less CPU per call than asyncio's
    own loop (bench/live.py, README "Performance"); asyncio's where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency; kept for platforms without a wheel
        asyncio.run(main)
        return
    uvloop.run(main)


def _feature_warnings(config: Config, features_conf: Path) -> list[str]:
    """The in-call codes in features.conf: withdrawal (R16), flag (R22), objection (R30)."""
    from callconsent.objection.features_check import objection_feature_warnings
    from callconsent.withdrawal.features_check import withdraw_feature_warnings

    return [
        *withdraw_feature_warnings(config, features_conf),
        *objection_feature_warnings(config, features_conf),
    ]


def _recordings_folder_refused(folder: Path) -> str | None:
    """Why ``serve`` will not record into ``folder`` (R32), or None."""
    from callconsent.evidence.fsio import folder_exposure

    try:
        mode = folder.stat().st_mode
    except FileNotFoundError:
        return None  # created with the right mode at the first recording
    except OSError as exc:
        return f"cannot read the recordings folder {folder}: {exc.strerror}"
    exposure = folder_exposure(mode)
    if exposure is None:
        return None
    return (
        f"the recordings folder {folder} is {exposure}: recordings are personal data, others "
        f"may have no access. Fix it with: chmod o-rwx {folder} (and make the files in it 0640)"
    )


def _spool_refused(config: Config) -> str | None:
    """Why the spool of encrypted recordings may not be used (R32, R33), or None."""
    from callconsent.evidence.spool import spool_problem

    spool = config.storage.spool_dir
    if spool is None or config.encryption is None:
        return None
    return spool_problem(spool)


def _check_config(args: argparse.Namespace) -> int:
    """``OK: <file>`` and the warnings (exit 0), or every error (exit 2). A secret that cannot
    be read is a warning: only serve, agent set/sync and withdraw of a live call need it."""
    path = args.file
    try:
        config = load_config(path)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"error: {line}", file=sys.stderr)
        for line in exc.warnings:
            print(f"warning: {line}", file=sys.stderr)
        print(f"FAILED: {path} ({len(exc.errors)} error(s))", file=sys.stderr)
        return EXIT_USAGE
    missing = recording_prerequisites(config)
    if missing:  # serve would refuse to start (R1, R2)
        for line in missing:
            print(f"error: {line}", file=sys.stderr)
        for line in config.warnings:
            print(f"warning: {line}", file=sys.stderr)
        print(f"FAILED: {path} ({len(missing)} error(s))", file=sys.stderr)
        return EXIT_USAGE
    if _archive_errors(config):  # notice versions (R20)
        return EXIT_USAGE
    spool = _spool_refused(config)
    if spool:  # serve would refuse to start
        print(f"error: {path}: {spool}", file=sys.stderr)
        print(f"FAILED: {path} (1 error(s))", file=sys.stderr)
        return EXIT_USAGE
    print(f"OK: {path}")
    for line in config.warnings:
        print(f"warning: {line}")
    for name, secret in _secrets(config):
        if problem := secret.problem():
            print(
                f"warning: {problem} (the {name} password: serve, agent set/sync and withdraw "
                "of a call in progress need it; the offline commands do not)"
            )
    anchor = config.storage.anchor_path
    if anchor is not None and not anchor.parent.is_dir():
        print(
            f"warning: {path}: storage.anchor_path: the folder {anchor.parent} does not exist: "
            "the ledger's anchor cannot be written there, so a cut ledger tail goes unseen"
        )
    enabled = [name for name, route in config.routes.items() if route.enabled]
    print(f"routes enabled: {', '.join(enabled) if enabled else 'none (nothing is recorded)'}")
    named = [n for n in enabled if config.routes[n].store_caller_name]
    print(f"caller display names stored on: {', '.join(named) if named else 'no route'}")
    print(f"config sha256: {config.sha256}")
    for warning in _feature_warnings(config, args.features_conf):  # R16, R22, R30
        print(f"warning: {warning}")
    for warning in _bypass_warnings(args):  # recording without consent (issue 15)
        print(f"warning: {warning}")
    return EXIT_OK


def _bypass_warnings(args: argparse.Namespace) -> list[str]:
    from callconsent.bypass_check import recording_bypass_warnings

    return recording_bypass_warnings(args.features_conf, args.queues_conf)


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
        p.add_argument(
            "--queues-conf",
            type=Path,
            default=Path("/etc/asterisk/queues.conf"),
            help="Asterisk's queues.conf, checked for queues that record by themselves, "
            "bypassing consent (default: %(default)s)",
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

    agent.register(sub)
    keys.register(sub)  # decrypt, rewrap (R33)
    play.register(sub)  # listen to one recording (R33, R35)
    lifecycle.register(sub)
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
