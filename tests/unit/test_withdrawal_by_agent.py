"""The agent withdraws for a caller who asks orally (R16, second half): the adapter over a fake
AMI and the real evidence store, the AstDB marker's value, the dialplan and the agent's prompt."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callconsent import names
from callconsent.store import EvidenceStore
from callconsent.whisper import agent_confirmation_sources
from callconsent.withdrawal import in_call
from callconsent.withdrawal.in_call_adapter import SOURCE_RECOVERED, WithdrawalHandler, marker_value
from tests.support.ami_fakes import TreeAmi
from tests.support.bridge import (
    CALLER,
    MARKER,
    REAL_ID,
    T0,
    agent_consents,
    call,
    gone,
    ledger,
    outcome,
    real_call,
    sidecar_of,
)
from tests.support.stasis_fakes import pcm_wav, write_audio

HOOK = Path(__file__).resolve().parents[2] / "dialplan" / "callconsent.conf"
STAMP = "2026-11-24T09:02:00.000Z"


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    (tmp_path / "recordings").mkdir()
    return EvidenceStore(
        recordings_dir=tmp_path / "recordings",
        ledger_path=tmp_path / "ledger.jsonl",
        config_sha256="d" * 64,
    )


def agent_event(caller: str = CALLER, by: str = "agent") -> dict[str, str]:
    return {
        "Event": "UserEvent",
        "UserEvent": names.WITHDRAW_USER_EVENT,
        "Caller": caller,
        "By": by,
        "Agent": "agent1",
        "At": STAMP,
    }


def stops(ami: TreeAmi) -> list[tuple[str, ...]]:
    return [c for c in ami.calls if c[0] == "StopMixMonitor"]


# -- the adapter -------------------------------------------------------------------------------


async def test_agent_withdrawal_of_training_only_deletes_then_stops_the_callers_recording(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    await agent_consents(store)
    write_audio(audio, pcm_wav(800))
    ami = TreeAmi()
    await WithdrawalHandler(ami, store).on_withdraw_event(agent_event())

    assert gone(audio)
    tomb = sidecar_of(audio)
    assert (tomb["state"], tomb["reason"]) == ("tombstone", "withdrawn")
    _decision, withdrawn, deleted = ledger(tmp_path)
    assert (withdrawn["outcome"], withdrawn["via"], withdrawn["source"]) == (
        "deleted",
        "agent_dtmf",
        "app",
    )
    assert deleted["reason"] == "withdrawn"
    # evidence first, then the caller's MixMonitor stopped over AMI, then the marker deleted
    assert ami.calls == [("StopMixMonitor", CALLER), ("DBDel", names.ASTDB_FAMILY, MARKER)]


async def test_agent_withdrawal_with_documentation_keeps_recording_and_stops_nothing(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("documentation", "training"), call(), T0))
    await agent_consents(store)
    ami = TreeAmi()
    await WithdrawalHandler(ami, store).on_withdraw_event(agent_event())

    doc = sidecar_of(audio)
    assert doc["state"] == "recording" and [p["purpose"] for p in doc["purposes"]] == [
        "documentation"
    ]
    withdrawn = ledger(tmp_path)[-1]
    assert (withdrawn["outcome"], withdrawn["via"]) == ("documentation_kept", "agent_dtmf")
    assert stops(ami) == []


async def test_caller_withdrawal_leaves_the_stop_to_the_dialplan(
    tmp_path: Path, store: EvidenceStore
) -> None:
    await store.prepare_recording(outcome("training"), call(), T0)
    await agent_consents(store)
    ami = TreeAmi()
    await WithdrawalHandler(ami, store).on_withdraw_event(agent_event(by=""))
    assert ledger(tmp_path)[-2]["via"] == "caller_dtmf"
    assert stops(ami) == []


async def test_a_failed_stop_is_logged_and_the_evidence_and_marker_are_done(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    await agent_consents(store)
    ami = TreeAmi(fail={"StopMixMonitor"})
    await WithdrawalHandler(ami, store).on_withdraw_event(agent_event())
    assert gone(audio) and sidecar_of(audio)["reason"] == "withdrawn"
    assert ami.calls[-1] == ("DBDel", names.ASTDB_FAMILY, MARKER)


async def test_a_second_agent_press_writes_nothing_and_stops_nothing_more(
    tmp_path: Path, store: EvidenceStore
) -> None:
    await store.prepare_recording(outcome("training"), call(), T0)
    await agent_consents(store)
    ami = TreeAmi()
    handler = WithdrawalHandler(ami, store)
    await handler.on_withdraw_event(agent_event())
    await handler.on_withdraw_event(agent_event())
    assert [e["type"] for e in ledger(tmp_path)] == ["agent_decision", "withdrawn", "deleted"]
    assert stops(ami) == [("StopMixMonitor", CALLER)]


async def test_an_agent_event_with_an_unsafe_caller_changes_nothing(
    tmp_path: Path, store: EvidenceStore
) -> None:
    ami = TreeAmi()
    await WithdrawalHandler(ami, store).on_withdraw_event(agent_event(caller="../../etc"))
    assert gone(tmp_path / "ledger.jsonl") and ami.calls == []


# -- the marker left while the app was away ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (STAMP, (STAMP, in_call.VIA_CALLER)),
        (f"{STAMP} agent", (STAMP, in_call.VIA_AGENT)),
        (f" {STAMP}  agent ", (STAMP, in_call.VIA_AGENT)),
        (f"{STAMP} someone", (STAMP, in_call.VIA_CALLER)),
    ],
)
def test_the_marker_value_says_who_withdrew(value: str, expected: tuple[str, str]) -> None:
    assert marker_value(value) == expected


async def test_an_agent_marker_finished_at_login_says_agent_and_stops_the_recording(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), real_call(), T0))
    write_audio(audio, pcm_wav(800))
    restarted = EvidenceStore(
        recordings_dir=tmp_path / "recordings",
        ledger_path=tmp_path / "ledger.jsonl",
        config_sha256="d" * 64,
    )
    marker = names.ASTDB_WITHDRAWN_PREFIX + REAL_ID
    ami = TreeAmi(tree=[(f"/callconsent/{marker}", f"{STAMP} agent")])
    assert await WithdrawalHandler(ami, restarted).recover() == 1

    assert gone(audio) and sidecar_of(audio)["reason"] == "withdrawn"
    withdrawn = ledger(tmp_path)[0]
    assert (withdrawn["via"], withdrawn["source"], withdrawn["at"]) == (
        "agent_dtmf",
        SOURCE_RECOVERED,
        STAMP,
    )
    assert ami.calls[1:] == [("StopMixMonitor", REAL_ID), ("DBDel", names.ASTDB_FAMILY, marker)]


# -- the dialplan and the agent's prompt --------------------------------------------------------


def section(name: str) -> list[str]:
    """The code lines (comments dropped) of one dialplan context."""
    out: list[str] = []
    inside = False
    for raw in HOOK.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].rstrip()
        if line.startswith("["):
            inside = line == f"[{name}]"
            continue
        if inside and line:
            out.append(line)
    return out


def test_the_agent_gosub_enables_the_code_on_the_agents_channel_only_for_consent_purposes() -> None:
    lines = [x for x in section(names.AGENT_CONTEXT) if names.WITHDRAW_AGENT_FEATURE in x]
    assert len(lines) == 1
    assert re.search(
        r"ExecIf\(\$\[\"\$\{CALLCONSENT_AGENT_PURPOSES\}\" != \"\"\]\?"
        r"Set\(DYNAMIC_FEATURES=",
        lines[0],
    ), lines[0]
    assert "__DYNAMIC_FEATURES" not in HOOK.read_text() and "_DYNAMIC_FEATURES" not in lines[0]
    assert not [x for x in section(names.HOOK_CONTEXT) if names.WITHDRAW_AGENT_FEATURE in x]


def test_the_agent_context_marks_the_caller_tells_the_app_and_never_stops_its_own_channel() -> None:
    code = "\n".join(section(names.WITHDRAW_AGENT_CONTEXT))
    assert f"Local/${{LOCAL(caller)}}@{names.WITHDRAW_MARK_CONTEXT}" in code
    assert (
        f"__{names.VAR_WITHDRAWN}=${{{names.VAR_AGENT_WITHDRAWN}}} {names.WITHDRAW_BY_AGENT})"
        in code
    )
    assert re.search(
        rf"UserEvent\({names.WITHDRAW_USER_EVENT},Caller: \$\{{LOCAL\(caller\)\}},"
        rf"By: {names.WITHDRAW_BY_AGENT},Agent: ",
        code,
    )
    assert "StopMixMonitor" not in code  # it would act on the agent's channel: the app stops it
    assert "DB(" not in code  # the marker is written on a Local channel of its own
    # the marker comes before the event (durable before the app can delete it)
    assert code.index("Originate(") < code.index("UserEvent(")
    assert f"/{names.AGENT_WITHDRAW_PROMPT})" in code


def test_the_agents_confirmation_exists_in_every_whisper_language() -> None:
    sources = agent_confirmation_sources()
    assert {s.language for s in sources} == {"da", "en"}
    assert all(s.text.audio == names.AGENT_WITHDRAW_PROMPT for s in sources)
