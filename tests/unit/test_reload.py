"""SIGHUP's config reload (callconsent/reload.py): new calls use the new file, calls in progress
keep their plan and cite the config they started under, a bad file is rejected with the old one
kept, and a change that needs a restart is rejected too."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from callconsent import metrics, names
from callconsent.app import ConfigPlanner
from callconsent.reload import LiveConfig
from callconsent.stasis import Skip, StasisApp
from callconsent.store import EvidenceStore
from tests.support.stasis_fakes import (
    FakeAri,
    dtmf,
    load_demo,
    playback_event,
    stasis_start,
    write_prompts,
)

OLD_CALL, NEW_CALL = "1764000000.1", "1764000000.2"


@pytest.fixture(autouse=True)
def _ari_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCONSENT_ARI_PASSWORD", "callconsent-lab")


def rewrite(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def disable_support(data: dict[str, Any]) -> None:
    data["routes"]["support"]["enabled"] = False


def reloads(result: str) -> float:
    return metrics.RELOADS.value(result=result)


async def test_a_valid_change_is_in_force_for_the_next_call(tmp_path: Path) -> None:
    config = load_demo(tmp_path)
    live = LiveConfig(config, ConfigPlanner)
    assert not isinstance(live.plan("support", None), Skip)
    rewrite(config.path, disable_support)
    applied = reloads("applied")
    new = await live.reload()
    assert new is not None and live.config is new and new.sha256 != config.sha256
    assert live.sha256() == new.sha256
    assert live.plan("support", None) == Skip("not_required", "route_disabled")
    assert reloads("applied") == applied + 1


async def test_an_invalid_file_is_rejected_and_the_old_config_stays(tmp_path: Path) -> None:
    config = load_demo(tmp_path)
    live = LiveConfig(config, ConfigPlanner)
    config.path.write_text("routes: [this is: not, a config\n", encoding="utf-8")
    rejected = reloads("rejected")
    assert await live.reload() is None
    assert live.config is config
    assert not isinstance(live.plan("support", None), Skip)
    assert reloads("rejected") == rejected + 1


async def test_a_config_error_is_rejected_with_the_errors_logged(tmp_path: Path) -> None:
    config = load_demo(tmp_path)
    live = LiveConfig(config, ConfigPlanner)
    rewrite(config.path, lambda d: d["routes"]["support"].update(language="xx-not-a-language"))
    assert await live.reload() is None
    assert live.config is config


async def test_a_change_that_needs_a_restart_is_rejected(tmp_path: Path) -> None:
    config = load_demo(tmp_path)
    live = LiveConfig(config, ConfigPlanner)
    rewrite(config.path, lambda d: d["storage"].update(recordings_dir=str(tmp_path / "elsewhere")))
    assert await live.reload() is None
    assert live.config is config


async def test_an_unchanged_file_is_counted_and_changes_nothing(tmp_path: Path) -> None:
    config = load_demo(tmp_path)
    live = LiveConfig(config, ConfigPlanner)
    unchanged = reloads("unchanged")
    assert await live.reload() is None
    assert live.config is config
    assert reloads("unchanged") == unchanged + 1


async def test_a_call_in_progress_keeps_its_plan_and_cites_the_config_it_started_under(
    tmp_path: Path,
) -> None:
    write_prompts(tmp_path / "prompts")
    config = load_demo(tmp_path)
    config.storage.recordings_dir.mkdir(parents=True)
    config.storage.ledger_path.parent.mkdir(parents=True, exist_ok=True)
    live = LiveConfig(config, lambda c: ConfigPlanner(c, rng=lambda: 0.0))
    ari = FakeAri()
    store = EvidenceStore(
        recordings_dir=config.storage.recordings_dir,
        ledger_path=config.storage.ledger_path,
        config_sha256=config.sha256,
    )
    app = StasisApp(ari, live, store, config_sha256=live.sha256)

    async def play_through(cid: str) -> None:
        pid = ari.plays(cid)[-1][1]
        for kind, state in (("PlaybackStarted", "playing"), ("PlaybackFinished", "done")):
            await app.on_channel_event(cid, playback_event(kind, cid, pid, state))

    await app.on_channel_event(OLD_CALL, stasis_start(OLD_CALL, "support"))
    await play_through(OLD_CALL)  # the notice
    rewrite(config.path, disable_support)
    new = await live.reload()  # support is off for new calls from here on
    assert new is not None
    await app.on_channel_event(NEW_CALL, stasis_start(NEW_CALL, "support"))
    await play_through(OLD_CALL)  # the question: the old call still asks it
    await app.on_channel_event(OLD_CALL, dtmf(OLD_CALL, "1"))

    assert ari.result(OLD_CALL)["CALLCONSENT_STATUS"] == "given"
    assert ari.result(NEW_CALL)[names.VAR_REASON] == "route_disabled"
    ledger = [json.loads(line) for line in config.storage.ledger_path.read_text().splitlines()]
    by_call = {e["call"]["uniqueid"]: e for e in ledger if e.get("call")}
    assert by_call[OLD_CALL]["config_sha256"] == config.sha256
    assert by_call[NEW_CALL]["config_sha256"] == new.sha256
    (sidecar,) = config.storage.recordings_dir.rglob("*.json")
    assert json.loads(sidecar.read_text())["config_sha256"] == config.sha256
