"""The registry lookup per call: a stat while the file is unchanged, a fresh read after any change."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callconsent.agents import registry as agents
from callconsent.agents.registry import SETTLED_NS, AgentRegistry

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class Clock:
    """Nanoseconds since the epoch, moved by the test."""

    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    seen: list[Path] = []
    real = agents.read_json

    def counting(path: Path) -> dict[str, object]:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(agents, "read_json", counting)
    return seen


def _registry(tmp_path: Path, clock: Clock) -> AgentRegistry:
    state = tmp_path / "state"
    return AgentRegistry(state / "agents.json", state / "ledger.jsonl", clock_ns=clock)


def _agent1_given_settled(tmp_path: Path) -> AgentRegistry:
    """A registry where agent1 has given consent, its file older than the settle window."""
    clock = Clock()
    reg = _registry(tmp_path, clock)
    reg.set("agent1", "given", actor="hr:jane", now=T0)
    _settle(reg, clock)
    return reg


def _settle(reg: AgentRegistry, clock: Clock) -> None:
    st = os.stat(reg.path)
    clock.ns = max(st.st_mtime_ns, st.st_ctime_ns) + SETTLED_NS


def test_a_settled_registry_is_parsed_once_for_many_lookups(
    tmp_path: Path, parses: list[Path]
) -> None:
    reg = _agent1_given_settled(tmp_path)
    parses.clear()
    for _ in range(5):
        got = reg.get("agent1")
        assert got is not None and got.given
    assert len(parses) == 1


def test_a_change_after_the_parse_is_seen_by_the_next_lookup(
    tmp_path: Path, parses: list[Path]
) -> None:
    clock = Clock()
    reg = _registry(tmp_path, clock)
    reg.set("agent1", "given", actor="hr:jane", now=T0)
    _settle(reg, clock)
    assert reg.get("agent1").given  # type: ignore[union-attr]
    other = AgentRegistry(reg.path, tmp_path / "state" / "ledger.jsonl")  # e.g. the CLI
    other.revoke("agent1", actor="hr:jane", now=T0)
    _settle(reg, clock)
    got = reg.get("agent1")
    assert got is not None and not got.given


def test_a_registry_changed_just_now_is_read_again_at_every_lookup(
    tmp_path: Path, parses: list[Path]
) -> None:
    """Within the time stamps' granularity a second change could keep size and stamps."""
    clock = Clock()
    reg = _registry(tmp_path, clock)
    reg.set("agent1", "given", actor="hr:jane", now=T0)
    st = os.stat(reg.path)
    clock.ns = max(st.st_mtime_ns, st.st_ctime_ns) + SETTLED_NS - 1
    parses.clear()
    reg.get("agent1")
    reg.get("agent1")
    assert len(parses) == 2


def test_a_deleted_registry_knows_no_agent_any_more(tmp_path: Path) -> None:
    reg = _agent1_given_settled(tmp_path)
    assert reg.get("agent1") is not None
    reg.path.unlink()
    assert reg.get("agent1") is None  # absence is never consent


def test_lookup_of_an_unchanged_registry_answers_without_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = _agent1_given_settled(tmp_path)
    hops: list[object] = []
    real = asyncio.to_thread

    async def counting(func: Callable[..., object], /, *args: object) -> object:
        hops.append(func)
        return await real(func, *args)

    monkeypatch.setattr(asyncio, "to_thread", counting)
    first = asyncio.run(agents.lookup(reg, "agent1"))  # never parsed: read in a thread
    again = [asyncio.run(agents.lookup(reg, "agent1")) for _ in range(3)]
    assert first is not None and first.given
    assert again == [first] * 3
    assert len(hops) == 1


def test_lookup_reads_a_changed_registry_again_in_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = _agent1_given_settled(tmp_path)
    assert asyncio.run(agents.lookup(reg, "agent1")).given  # type: ignore[union-attr]
    AgentRegistry(reg.path, tmp_path / "state" / "ledger.jsonl").set(
        "agent1", "refused", actor="hr:jane", now=T0
    )
    assert reg.parsed("agent1") is None
    got = asyncio.run(agents.lookup(reg, "agent1"))
    assert got is not None and not got.given


def test_lookup_of_a_missing_registry_file_is_no_agent(tmp_path: Path) -> None:
    reg = _agent1_given_settled(tmp_path)
    reg.get("agent1")
    reg.path.unlink()
    assert reg.parsed("agent1") == (None,)
    assert asyncio.run(agents.lookup(reg, "agent1")) is None
