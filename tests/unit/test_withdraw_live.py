"""``callconsent withdraw --call-id`` on a call still in progress (R16): the partial training
recording is deleted and its MixMonitor stopped in Asterisk over AMI (a fake here)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from callconsent import store as store_module
from callconsent.ami import AmiError
from callconsent.config import AmiConfig, Config
from callconsent.evidence import sidecar
from callconsent.evidence.paths import paths_from_relative
from callconsent.lifecycle import live_stop
from callconsent.lifecycle.live_stop import StopAmi, stop_live_recordings
from callconsent.store import EvidenceStore
from tests.support.cli import run
from tests.support.lifecycle_fixtures import Store, make_config, make_store
from tests.unit import test_bridge as bridge


class FakeStopAmi:
    def __init__(self, answer: str | None = None) -> None:
        self.stopped: list[str] = []
        self.answer = answer  # an AMI error message, or None: success

    async def stop_mixmonitor(self, channel: str) -> None:
        self.stopped.append(channel)
        if self.answer is not None:
            raise AmiError("StopMixMonitor", self.answer)


def opener(ami: FakeStopAmi | None) -> live_stop.AmiOpener:
    """An AMI that logs in and is ``ami``; None: the login fails."""

    @asynccontextmanager
    async def open_ami(_config: AmiConfig) -> AsyncIterator[StopAmi]:
        if ami is None:
            raise AmiError("Login", "not logged in (wrong credentials?)")
        yield ami

    return open_ami


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return make_store(tmp_path)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


def use_ami(monkeypatch: pytest.MonkeyPatch, ami: FakeStopAmi | None) -> None:
    monkeypatch.setattr(live_stop, "_open_ami", opener(ami))


def withdraw_json(
    config: Config, call_id: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, object]]:
    code = run(
        config,
        "withdraw",
        "--call-id",
        call_id,
        "--reason",
        "caller asked the agent",
        "--json",
        "--actor",
        "agent1",
    )
    return code, json.loads(capsys.readouterr().out)


def test_live_training_recording_is_deleted_and_stopped_in_asterisk(
    store: Store,
    config: Config,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = store.call("5000.2", purposes=("training",), live=True)
    assert paths is not None and sidecar.load(paths)["state"] == "recording"
    ami = FakeStopAmi()
    use_ami(monkeypatch, ami)
    code, out = withdraw_json(config, "5000.2", capsys)

    assert code == 0
    assert ami.stopped == ["5000.2"]
    assert out["recording_stops"] == [{"call_id": "5000.2", "outcome": "stopped", "detail": ""}]
    assert sidecar.load(paths)["reason"] == "withdrawn" and not paths.audio.exists()


def test_finished_calls_and_documentation_kept_recordings_need_no_stop(
    store: Store,
    config: Config,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store.call("5000.2", purposes=("training",))  # finished: nothing records any more
    live = store.call("5000.3", purposes=("documentation", "training"), live=True)
    ami = FakeStopAmi()
    use_ami(monkeypatch, ami)
    for call_id in ("5000.2", "5000.3"):
        code, out = withdraw_json(config, call_id, capsys)
        assert code == 0 and out["recording_stops"] == []
    assert ami.stopped == []  # documentation goes on recording
    assert live is not None and [p["purpose"] for p in sidecar.load(live)["purposes"]] == [
        "documentation"
    ]


@pytest.mark.parametrize(
    ("ami", "outcome", "code"),
    [
        (FakeStopAmi("No such channel"), "ended", 0),  # the call ended meanwhile
        (FakeStopAmi("Could not stop MixMonitor"), "failed", 1),
        (None, "failed", 1),  # no login
    ],
)
def test_a_stop_that_could_not_be_made_is_reported_and_the_withdrawal_stands(
    store: Store,
    config: Config,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ami: FakeStopAmi | None,
    outcome: str,
    code: int,
) -> None:
    paths = store.call("5000.2", purposes=("training",), live=True)
    use_ami(monkeypatch, ami)
    got, out = withdraw_json(config, "5000.2", capsys)
    assert got == code
    (stop,) = out["recording_stops"]  # type: ignore[misc]
    assert stop["outcome"] == outcome and (outcome == "ended" or stop["detail"])
    assert paths is not None and sidecar.load(paths)["reason"] == "withdrawn"


def test_without_ami_configured_the_text_output_says_the_recording_goes_on(
    store: Store, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    store.call("5000.2", purposes=("training",), live=True)
    no_ami = dataclasses.replace(config, asterisk=dataclasses.replace(config.asterisk, ami=None))
    code = run(no_ami, "withdraw", "--call-id", "5000.2", "--reason", "letter")
    text = capsys.readouterr().out
    assert code == 1
    assert "could not stop the recording in Asterisk: 5000.2" in text
    assert "asterisk.ami is not configured" in text and "until the call ends" in text


def test_no_live_call_means_no_ami_connection_at_all(config: Config) -> None:
    def never(_config: AmiConfig) -> live_stop.AbstractAsyncContextManager[StopAmi]:
        raise AssertionError("AMI opened without a live call")

    assert stop_live_recordings(config, [], open_ami=never) == []


async def test_the_apps_hangup_after_a_cli_withdrawal_writes_no_second_deletion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI tombstoned the live recording; the app, which does not know, ends the call."""
    monkeypatch.setattr(store_module, "FINALISE_TIMEOUT_SECONDS", 0.2)
    (tmp_path / "recordings").mkdir()
    app_store = EvidenceStore(
        recordings_dir=tmp_path / "recordings",
        ledger_path=tmp_path / "ledger.jsonl",
        config_sha256="d" * 64,
    )
    audio = Path(
        await app_store.prepare_recording(bridge.outcome("documentation"), bridge.call(), bridge.T0)
    )
    where = paths_from_relative(
        tmp_path / "recordings", str(audio.relative_to(tmp_path / "recordings"))
    )
    sidecar.write(where, sidecar.prepare_tombstone(where, reason="withdrawn", at=bridge.T0))
    await app_store.recording_ended(bridge.call(), bridge.T0)
    assert not (tmp_path / "ledger.jsonl").exists()  # no entry (the CLI's are in its own)
    assert sidecar.load(where)["reason"] == "withdrawn"
