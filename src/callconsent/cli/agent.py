"""``callconsent agent ...``: set, revoke, list and sync the agents' training consent (R15).

    callconsent agent set agent1 --consent given [--actor hr:jane]
    callconsent agent revoke agent1
    callconsent agent list [--json]
    callconsent agent sync            # re-mirror the whole registry into AstDB

A change is written to the registry and the ledger first, then mirrored into AstDB over AMI. A
revocation (``revoke``, or ``set --consent refused``) also removes training from the agent's
earlier recordings (training-only ones become tombstones; mixed ones keep documentation), as
the agent's own code on their phone does (``[callconsent-agent-self]``). If
the mirror fails the change still stands (the app refuses training whenever the AstDB flag and the
registry disagree), the command says so and exits 1; ``agent sync`` or the app's next AMI login
mirrors it.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sqlite3
import sys
from collections.abc import Awaitable, Callable

from callconsent.agents.registry import (
    CONSENTS,
    AgentConsent,
    AgentRegistry,
    AgentRegistryError,
    mirror,
    sync,
)
from callconsent.ami import Ami, AmiError, session
from callconsent.cli._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    add_config_option,
    load_or_exit,
)
from callconsent.clock import utc_now
from callconsent.config import Config


def _with_ami(config: Config, job: Callable[[Ami], Awaitable[str]]) -> tuple[bool, str]:
    """Run ``job`` on a fresh AMI connection; (ok, message)."""
    ami_config = config.asterisk.ami
    if ami_config is None:
        return False, "asterisk.ami is not configured"

    async def run() -> str:
        async with session(ami_config) as ami:
            return await job(ami)

    try:
        return True, asyncio.run(run())
    except AmiError as exc:
        return False, str(exc)


def _mirror_one(config: Config, record: AgentConsent) -> int:
    async def job(ami: Ami) -> str:
        await mirror(ami, record)
        return f"AstDB callconsent/agent/{record.agent_id} = {'1' if record.given else '0'}"

    ok, message = _with_ami(config, job)
    if not ok:
        print(
            f"warning: registry changed, but AstDB was not updated ({message}); the app refuses "
            "training for this agent until they agree: run `callconsent agent sync`",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    print(message)
    return EXIT_OK


def _set(args: argparse.Namespace, consent: str) -> int:
    config = load_or_exit(args.config)
    try:
        record = AgentRegistry.from_config(config).set(
            args.agent_id, consent, actor=args.actor, now=utc_now()
        )
    except (AgentRegistryError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, AgentRegistryError) else EXIT_PROBLEMS
    print(f"{record.agent_id}: {record.consent} at {record.as_dict()['changed_at']}")
    code = _mirror_one(config, record)
    if record.consent == "refused":  # training ends in the agent's earlier recordings too
        code = max(code, _withdraw_training(config, record.agent_id, args.actor))
    return code


def _withdraw_training(config: Config, agent_id: str, actor: str) -> int:
    """Remove training from ``agent_id``'s earlier recordings (training-only: tombstones)."""
    from callconsent.agents.own_consent_adapter import REASON
    from callconsent.lifecycle import Context
    from callconsent.lifecycle.withdraw import Scope, withdraw

    storage = config.storage
    try:
        with Context.create(
            storage.recordings_dir, storage.ledger_path, now=utc_now(), actor=actor
        ) as ctx:
            report = withdraw(ctx, Scope(agent=agent_id), reason=REASON)
    except (OSError, sqlite3.Error, ValueError) as exc:
        print(
            f"error: consent revoked, but the agent's earlier training recordings were not "
            f"removed ({type(exc).__name__}: {exc}); run this command again",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    print(report.summary())
    return EXIT_OK if report.complete else EXIT_PROBLEMS


def _list(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    try:
        agents = AgentRegistry.from_config(config).load()
    except (AgentRegistryError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    rows = [a.as_dict() for a in sorted(agents.values(), key=lambda a: a.agent_id)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        print(f"{row['agent_id']:<32} {row['consent']:<8} {row['changed_at']}  {row['changed_by']}")
    if not rows:
        print("no agents registered (an unregistered agent has refused)")
    return EXIT_OK


def _sync(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    registry = AgentRegistry.from_config(config)

    async def job(ami: Ami) -> str:
        return f"{await sync(ami, registry)} agent(s) mirrored into AstDB"

    ok, message = _with_ami(config, job)
    print(message if ok else f"error: {message}", file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_PROBLEMS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``agent`` and its subcommands to the ``callconsent`` parser."""
    agent = subparsers.add_parser("agent", help="agents' standing consent to training recordings")
    sub = agent.add_subparsers(dest="agent_command", required=True)

    def actor(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--actor",
            default=f"cli:{getpass.getuser()}",
            help="who made the change, e.g. hr:jane (default: %(default)s)",
        )

    p = sub.add_parser("set", help="set an agent's consent (given or refused)")
    add_config_option(p)
    actor(p)
    p.add_argument("agent_id", metavar="ID", help="the queue member name, [A-Za-z0-9_-]{1,32}")
    p.add_argument("--consent", required=True, choices=CONSENTS)
    p.set_defaults(run=lambda a: _set(a, a.consent))

    p = sub.add_parser("revoke", help="withdraw an agent's consent (it becomes refused)")
    add_config_option(p)
    actor(p)
    p.add_argument("agent_id", metavar="ID")
    p.set_defaults(run=lambda a: _set(a, "refused"))

    p = sub.add_parser("list", help="list every registered agent")
    add_config_option(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_list)

    p = sub.add_parser("sync", help="mirror the whole registry into AstDB")
    add_config_option(p)
    p.set_defaults(run=_sync)
