"""What the live path keeps of a call once it has ended: nothing.

The ARI adapter (:class:`callconsent.stasis.StasisApp`) and the evidence store keep per-call
maps (calls in flight, live recordings, agent waits, the sidecars they wrote, per-call locks).
Each must be emptied by the call's end, however it ends, or a long-running process grows with
every call; and a prepared recording that never starts must not be left claiming a recording.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callconsent import names
from callconsent.agents.evidence import AgentEvidence
from callconsent.ari import AriError, AriNotFound
from callconsent.keyed_locks import KeyedLocks
from callconsent.parties.hold import Pause
from tests.support.memory import kept_state
from tests.support.stasis_fakes import Harness, ari_error, pcm_wav, schema_problems, write_audio


def kept(h: Harness) -> dict[str, dict[str, int]]:
    """Every non-empty per-call container of the adapter, the store and its parts."""
    parts = {
        "app": h.app,
        "store": h.store,
        "sidecars": h.store._sidecars,
        "locks": h.store._locks,
    }
    found = {name: state for name, obj in parts.items() if (state := kept_state(obj))}
    found.get("store", {}).pop("_folders", None)  # date folders, not calls: at most a few
    return {name: state for name, state in found.items() if state}


def sidecar(h: Harness) -> dict[str, Any]:
    (path,) = h.sidecars()
    doc: dict[str, Any] = json.loads(path.read_text(encoding="ascii"))
    return doc


# -- a prepared recording that never starts -------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        ari_error("POST", "/applications/callconsent/subscription"),
        AriNotFound(404, "POST", "/x", "Channel not found"),
    ],
    ids=["ari-error", "channel-gone"],
)
async def test_a_recording_whose_channel_subscription_fails_becomes_a_tombstone_and_is_forgotten(
    tmp_path: Path, failure: AriError
) -> None:
    h = Harness(tmp_path)
    h.ari.fail["subscribe"] = failure
    await h.answer_question("c1", "1")
    await h.hangup("c1")

    doc = sidecar(h)
    assert (doc["state"], doc["reason"]) == ("tombstone", "not_started")
    assert schema_problems("sidecar.schema.json", doc) == []
    (call,) = h.calls_in_ledger("c1")
    assert call["recording"] is None  # the ledger names no file that was never recorded
    assert [e["type"] for e in h.ledger()] == ["deleted", "call"]
    assert kept(h) == {}
    await h.store.aclose()


# -- many calls, every way they end ---------------------------------------------------------


async def _given_and_recorded(h: Harness, cid: str) -> None:
    await h.answer_question(cid, "1")
    await h.agent_consents(cid)
    write_audio(Path(h.ari.result(cid)[names.VAR_RECORDING]), pcm_wav(800))
    await h.hangup(cid)


async def _given_no_agent(h: Harness, cid: str) -> None:
    await h.answer_question(cid, "1")
    await h.hangup(cid)


async def _refused(h: Harness, cid: str) -> None:
    await h.answer_question(cid, "2")
    await h.hangup(cid)


async def _hung_up_in_the_notice(h: Harness, cid: str) -> None:
    await h.start(cid)
    await h.hangup(cid)


async def test_after_many_calls_ended_every_way_the_adapter_and_store_keep_nothing(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    flows = (_given_and_recorded, _given_no_agent, _refused, _hung_up_in_the_notice)
    for n in range(40):
        await flows[n % len(flows)](h, f"c{n}")
    assert h.app.active_calls == 0
    assert len(h.calls_in_ledger("c0")) == 1 and len(h.sidecars()) == 20
    assert kept(h) == {}
    await h.store.aclose()


async def test_changes_for_calls_not_recorded_here_leave_no_lock_behind(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    now = datetime.now(UTC)
    for n in range(50):  # a hold, an agent's decision after the call ended, never recorded
        await h.store.record_pause(f"gone-{n}", now, Pause("hold", "agent", "agent1"))
        agent = AgentEvidence("agent1", "given", now, now)
        assert await h.store.agent_decided(f"gone-{n}", agent, given=True) is None
    assert kept(h) == {}
    await h.store.aclose()


# -- the per-call locks ---------------------------------------------------------------------


async def test_a_keyed_lock_serialises_its_key_and_is_gone_when_its_last_user_leaves() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def user(name: str, key: str, gate: asyncio.Event | None = None) -> None:
        async with locks.hold(key):
            order.append(f"{name}+")
            if gate is not None:
                await gate.wait()
            order.append(f"{name}-")

    gate = asyncio.Event()
    first = asyncio.create_task(user("a", "k", gate))
    await asyncio.sleep(0)
    second = asyncio.create_task(user("b", "k"))
    other = asyncio.create_task(user("c", "other"))
    await asyncio.sleep(0.01)
    assert len(locks) == 1  # "other" came and went; "k" is held and awaited
    assert order == ["a+", "c+", "c-"]
    gate.set()
    await asyncio.gather(first, second, other)
    assert order == ["a+", "c+", "c-", "a-", "b+", "b-"]
    assert len(locks) == 0 and kept_state(locks) == {}


async def test_a_keyed_lock_is_released_and_forgotten_when_its_holder_fails() -> None:
    locks = KeyedLocks()
    with pytest.raises(RuntimeError):
        async with locks.hold("k"):
            raise RuntimeError("boom")
    assert len(locks) == 0
    async with asyncio.timeout(1), locks.hold("k"):
        pass
