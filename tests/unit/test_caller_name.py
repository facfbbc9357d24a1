"""Display names are not stored unless the route asks (``store_caller_name``, issue 16): on
other routes the caller's CALLERID(name) reaches no sidecar and no ledger entry, through the
Stasis and the FastAGI flows alike, and calls the flow never runs for keep none either."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from callconsent.app import ConfigPlanner
from callconsent.config import ConfigError, load_config
from callconsent.evidence.ledger import iter_entries
from callconsent.store import EvidenceStore
from tests.support.agi_fakes import FakeLine, request
from tests.support.sealed import caller_of
from tests.support.stasis_fakes import (
    Harness,
    ShortTimeouts,
    load_demo,
    pcm_wav,
    write_audio,
    write_prompts,
)

NAME = "Karen Distinctname"
CID = "1796455517.7"
REPO = Path(__file__).resolve().parents[2]


def evidence_bytes(recordings: Path, ledger: Path) -> bytes:
    files = [p for p in recordings.rglob("*") if p.is_file()]
    return b"".join(p.read_bytes() for p in [*files, ledger] if p.exists())


def test_routes_keep_no_name_unless_they_ask(tmp_path: Path) -> None:
    config = load_demo(tmp_path)
    assert config.routes["docs"].store_caller_name is False  # the default
    assert config.routes["support"].store_caller_name is True  # the lab asks on this one


def test_store_caller_name_must_be_true_or_false(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "config" / "demo.yaml").read_text("utf-8"))
    data["routes"]["docs"]["store_caller_name"] = "yes please"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"CALLCONSENT_ARI_PASSWORD": "x"})
    assert any("routes.docs.store_caller_name" in e for e in caught.value.errors)


async def test_a_stasis_call_on_a_route_that_does_not_ask_stores_no_name(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start(CID, route="docs", number="+4512121212", name=NAME)
    await h.play_through(CID)  # the notice; documentation records without a question
    (sidecar,) = h.sidecars()  # the recording's, written when it started
    assert NAME.encode() not in sidecar.read_bytes()
    write_audio(Path(h.ari.result(CID)["CALLCONSENT_RECORDING"]), pcm_wav(800))
    await h.hangup(CID)
    (entry,) = [e for e in h.ledger() if e["type"] == "call"]
    caller = caller_of(entry, h.ledger_path)
    assert caller.name is None
    assert caller.number == "+4512121212"  # the number stays (R19, R27)
    assert NAME.encode() not in evidence_bytes(h.recordings, h.ledger_path)


async def test_a_stasis_call_on_a_route_that_asks_keeps_the_name(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start(CID, route="support", number="+4512121212", name=NAME)
    await h.play_through(CID)
    await h.play_through(CID)
    await h.digit(CID, "2")
    (entry,) = [e for e in h.ledger() if e["type"] == "call"]
    assert caller_of(entry, h.ledger_path).name == NAME


async def test_a_call_for_an_unknown_route_stores_no_name(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start(CID, route="nosuchroute", number="+4512121212", name=NAME)
    (entry,) = [e for e in h.ledger() if e["type"] == "call"]
    assert entry["reason"] == "unknown_route"
    assert caller_of(entry, h.ledger_path).name is None


def agi_flow(tmp_path: Path) -> tuple[Any, Path, Path]:
    from callconsent.agi.adapter import AgiFlow

    write_prompts(tmp_path / "prompts")
    config = load_demo(tmp_path)
    config.storage.recordings_dir.mkdir(parents=True, exist_ok=True)
    config.storage.ledger_path.parent.mkdir(parents=True, exist_ok=True)
    store = EvidenceStore(
        recordings_dir=config.storage.recordings_dir,
        ledger_path=config.storage.ledger_path,
        config_sha256=config.sha256,
    )
    planner = ShortTimeouts(ConfigPlanner(config, rng=lambda: 0.0), 1.0)
    return AgiFlow(planner, store), config.storage.recordings_dir, config.storage.ledger_path


@pytest.mark.parametrize(("route", "kept"), [("docs", None), ("nosuchroute", None)])
async def test_a_fastagi_call_on_a_route_that_does_not_ask_stores_no_name(
    tmp_path: Path, route: str, kept: str | None
) -> None:
    flow, recordings, ledger = agi_flow(tmp_path)
    line = FakeLine(
        request=request(f"callconsent?route={route}"), script=[""], caller=("+4513", NAME, "")
    )
    await flow(line)
    entries = [e.entry for e in iter_entries(ledger) if e.entry is not None]
    (entry,) = [e for e in entries if e["type"] == "call"]
    assert caller_of(entry, ledger).name is kept
    assert NAME.encode() not in evidence_bytes(recordings, ledger)


async def test_a_fastagi_call_on_a_route_that_asks_keeps_the_name(tmp_path: Path) -> None:
    flow, _, ledger = agi_flow(tmp_path)
    await flow(FakeLine(script=["", "2"], caller=("+4513", NAME, "")))  # support: refuses
    entries = [e.entry for e in iter_entries(ledger) if e.entry is not None]
    (entry,) = [e for e in entries if e["type"] == "call"]
    assert caller_of(entry, ledger).name == NAME


def test_check_config_lists_the_routes_that_keep_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from callconsent.cli.main import main

    monkeypatch.setenv("CALLCONSENT_ARI_PASSWORD", "x")
    config = load_demo(tmp_path)
    main(["check-config", str(config.path)])
    assert "caller display names stored on: mixed-queue, support" in capsys.readouterr().out
