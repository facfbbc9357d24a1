"""The agents' standing consent to training recordings (R15): a registry, its ledger trail and its
mirror in Asterisk's AstDB.

The registry (``agent_consent.registry_path``) is the source of truth: one JSON document, written
atomically, holding per agent id (the queue member name) ``given`` or ``refused`` with the UTC
time and the actor of the last change::

    {"schema_version": 1,
     "agents": {"agent1": {"consent": "given", "changed_at": "2026-11-24T12:00:00.000Z",
                           "changed_by": "cli:root"}}}

Every change is also appended to the ledger (``type: agent_consent``; no caller data) and mirrored
into AstDB as ``callconsent/agent/<id>`` = ``1`` (given) or ``0`` (refused), so the Queue member
gosub can read it at bridge time without the app. The app re-mirrors the whole registry at each AMI
login (:func:`sync`). An agent not in the registry has refused: absence is never consent.

At the bridge the app checks BOTH the flag the dialplan read and this registry; a disagreement (a
mirror that failed) counts as refused.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from callconsent import names
from callconsent.agents.rules import AGENT_ID_RE
from callconsent.ami import AmiOps
from callconsent.config import Config
from callconsent.evidence import ledger
from callconsent.evidence.fsio import atomic_write_json, parse_stamp, read_json, utc_stamp

ACTOR_RE: Final = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
SCHEMA_VERSION: Final = 1

#: A registry file whose last change (mtime or ctime) is younger than this is parsed again at
#: every lookup: within the file system's time stamp granularity a second change could leave the
#: same size and time stamps (the "racy git" case); an older one is parsed once per change.
SETTLED_NS: Final = 2_000_000_000

Consent = Literal["given", "refused"]
CONSENTS: Final[tuple[Consent, ...]] = ("given", "refused")


class AgentRegistryError(ValueError):
    """A bad agent id or actor, or a registry file that cannot be read as one."""


def check_agent_id(agent_id: str) -> str:
    if not AGENT_ID_RE.fullmatch(agent_id):
        raise AgentRegistryError(f"agent id must match {AGENT_ID_RE.pattern}, got {agent_id!r}")
    return agent_id


def astdb_key(agent_id: str) -> str:
    return f"{names.ASTDB_AGENT_PREFIX}{check_agent_id(agent_id)}"


@dataclass(frozen=True, slots=True)
class AgentConsent:
    agent_id: str
    consent: Consent
    changed_at: datetime
    changed_by: str

    @property
    def given(self) -> bool:
        return self.consent == "given"

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "consent": self.consent,
            "changed_at": utc_stamp(self.changed_at),
            "changed_by": self.changed_by,
        }


class AgentRegistry:
    """Reads and changes the registry file; ``ledger_path``: where changes are logged."""

    def __init__(
        self,
        path: Path,
        ledger_path: Path,
        *,
        anchor_path: Path | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = path
        self._ledger = ledger.Ledger(ledger_path, anchor_path=anchor_path)
        self._clock_ns = clock_ns
        #: the file's identity (device, inode, size, mtime, ctime) and what it held then
        self._parsed: tuple[tuple[int, ...], dict[str, AgentConsent]] | None = None

    @classmethod
    def from_config(cls, config: Config) -> AgentRegistry:
        s = config.storage
        return cls(config.agent_consent.registry_path, s.ledger_path, anchor_path=s.anchor_path)

    def load(self) -> dict[str, AgentConsent]:
        """Every agent in the registry (an empty dict when there is no file yet)."""
        try:
            doc = read_json(self.path)
        except FileNotFoundError:
            return {}
        return _parse(self.path, doc)

    def get(self, agent_id: str) -> AgentConsent | None:
        """One agent's standing consent as the file holds it now (the file is parsed again
        whenever it changed: a lookup per call costs a stat, not a parse of every agent)."""
        return self.current().get(check_agent_id(agent_id))

    def parsed(self, agent_id: str) -> tuple[AgentConsent | None] | None:
        """:meth:`get` from the last parse, in a 1-tuple, when the file is still the one parsed
        (one stat, no read); None when it has to be read again (or never was)."""
        check_agent_id(agent_id)
        parsed = self._parsed
        if parsed is None:
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return (None,)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        return (parsed[1].get(agent_id),) if parsed[0] == key else None

    def current(self) -> Mapping[str, AgentConsent]:
        """Every agent, as :meth:`load`, reusing the last parse while the file is the same one
        (same device, inode, size, mtime and ctime; :func:`atomic_write_json` gives every
        change a new inode) and has been settled for ``SETTLED_NS``."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        parsed = self._parsed
        if parsed is not None and parsed[0] == key:
            return parsed[1]
        agents = self.load()  # read after the stat: never older than the key
        if self._clock_ns() - max(st.st_mtime_ns, st.st_ctime_ns) >= SETTLED_NS:
            self._parsed = (key, agents)
        return agents

    def set(
        self, agent_id: str, consent: str, *, actor: str, now: datetime, source: str = "cli"
    ) -> AgentConsent:
        """Record ``consent`` for ``agent_id``: ledger entry first (an interrupted change may be
        logged without taking effect, never take effect unlogged), then the registry file."""
        check_agent_id(agent_id)
        if consent not in CONSENTS:
            raise AgentRegistryError(f"consent must be given or refused, got {consent!r}")
        if not ACTOR_RE.fullmatch(actor):
            raise AgentRegistryError(f"actor must match {ACTOR_RE.pattern}, got {actor!r}")
        record = AgentConsent(agent_id, consent, now, actor)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path.with_name(self.path.name + ".lock")):
            agents = self.load()
            agents[agent_id] = record
            self._ledger.append(
                {
                    "type": "agent_consent",
                    "at": utc_stamp(now),
                    "agent": {"id": agent_id, "consent": consent, "changed_by": actor},
                    "source": source,
                }
            )
            atomic_write_json(self.path, _document(agents))
        return record

    def revoke(
        self, agent_id: str, *, actor: str, now: datetime, source: str = "cli"
    ) -> AgentConsent:
        """Withdraw an agent's consent: it becomes ``refused`` (the history stays in the ledger)."""
        return self.set(agent_id, "refused", actor=actor, now=now, source=source)


class Lookup(Protocol):
    def get(self, agent_id: str) -> AgentConsent | None: ...


async def lookup(registry: Lookup, agent_id: str) -> AgentConsent | None:
    """``registry.get(agent_id)`` from a coroutine. A registry file unchanged since its last
    parse answers on the event loop (one stat, about 3 us of CPU); anything else is read in a
    worker thread (the hop alone costs about 100 us of CPU on a 2-core VM)."""
    if isinstance(registry, AgentRegistry):
        found = registry.parsed(agent_id)
        if found is not None:
            return found[0]
    return await asyncio.to_thread(registry.get, agent_id)


def _document(agents: Mapping[str, AgentConsent]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "agents": {
            a.agent_id: {
                "consent": a.consent,
                "changed_at": utc_stamp(a.changed_at),
                "changed_by": a.changed_by,
            }
            for a in sorted(agents.values(), key=lambda a: a.agent_id)
        },
    }


def _parse(path: Path, doc: Mapping[str, Any]) -> dict[str, AgentConsent]:
    agents = doc.get("agents")
    if doc.get("schema_version") != SCHEMA_VERSION or not isinstance(agents, dict):
        raise AgentRegistryError(f"{path}: not an agent registry (schema_version 1)")
    out: dict[str, AgentConsent] = {}
    for agent_id, entry in agents.items():
        try:
            consent = entry["consent"]
            if not AGENT_ID_RE.fullmatch(agent_id) or consent not in CONSENTS:
                raise ValueError("bad id or consent")
            out[agent_id] = AgentConsent(
                agent_id, consent, parse_stamp(entry["changed_at"]), str(entry["changed_by"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AgentRegistryError(f"{path}: agents.{agent_id}: {exc}") from None
    return out


class _locked:
    """An exclusive flock on ``path`` for a read-modify-write of the registry."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        os.close(self._fd)


# -- the AstDB mirror -----------------------------------------------------------------------


async def mirror(ami: AmiOps, record: AgentConsent) -> None:
    """Put one agent's flag into AstDB: ``callconsent/agent/<id>`` = 1 or 0 (raises AmiError)."""
    value = "1" if record.given else "0"
    await ami.db_put(names.ASTDB_FAMILY, astdb_key(record.agent_id), value)


async def sync(ami: AmiOps, registry: AgentRegistry) -> int:
    """Mirror the whole registry into AstDB; return how many agents were written."""
    agents = registry.load()
    for record in agents.values():
        await mirror(ami, record)
    return len(agents)
