"""Notice and config agree (R5, R20, R25): the spoken retention is ``retention_days``, a notice
version never changes purpose, basis or retention once archived, and serve archives what it
plays."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from callconsent.app import ConfigPlanner
from callconsent.cli.main import main
from callconsent.config import ConfigError, load_config
from callconsent.config._retention_text import stated_periods
from callconsent.consent import CallPlan
from callconsent.notice_archive import NoticeArchiver, archive_conflicts, plan_versions

REPO = Path(__file__).resolve().parents[2]
ENV = {"CALLCONSENT_ARI_PASSWORD": "callconsent-lab"}


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """``serve`` configures structlog for the process, bound to pytest's captured stderr: later
    tests must not log into that closed capture."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "config" / "demo.yaml").read_text("utf-8"))
    data = copy.deepcopy(loaded)
    data["storage"] = {
        "recordings_dir": str(tmp_path / "recordings"),
        "ledger_path": str(tmp_path / "state" / "ledger.jsonl"),
        "notice_archive_dir": str(tmp_path / "state" / "notices"),
    }
    data["prompts_dir"] = str(tmp_path / "prompts")
    return data


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "callconsent.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    return path


def set_training_retention(data: dict[str, Any], days: int, da: str, en: str) -> None:
    notice = data["notices"]["lab_training_v1"]
    notice["retention_days"] = days
    for lang, said in (("da", da), ("en", en)):
        text = notice["languages"][lang]
        text["transcript"] = text["transcript"].replace(text["retention"], said)
        text["retention"] = said
    for route in data["routes"].values():
        if "training" in route["purposes"]:
            route["purposes"]["training"]["retention_days"] = days


def install_prompts(data: dict[str, Any]) -> None:
    """A WAV (any bytes) for every prompt of the lab notices."""
    root = Path(data["prompts_dir"])
    for notice in data["notices"].values():
        for lang, text in notice["languages"].items():
            for audio in [text["audio"]] + [
                text[k]["audio"] for k in ("question", "explicit_question", "retry") if k in text
            ]:
                (root / lang).mkdir(parents=True, exist_ok=True)
                (root / lang / f"{audio}.wav").write_bytes(f"{lang}/{audio}".encode())


# -- the spoken retention ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "least", "most"),
    [
        ("Optagelsen slettes efter 3 måneder", 84, 93),
        ("Vi sletter den efter 30 dage", 30, 30),
        ("The recording is deleted after 30 days at the latest", 30, 30),
        ("slettes efter tre måneder", 84, 93),
        ("kept for one year", 365, 366),
        ("slettes efter 2 uger", 14, 14),
    ],
)
def test_the_retention_said_in_a_notice_is_read_as_days(text: str, least: int, most: int) -> None:
    [period] = stated_periods(text)
    assert (period.least_days, period.most_days) == (least, most)


def test_a_notice_saying_30_days_over_a_365_day_retention_is_an_error(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    for route in data["routes"].values():
        if "training" in route["purposes"]:
            route["purposes"]["training"]["retention_days"] = 365
    data["notices"]["lab_training_v1"]["retention_days"] = 365
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV)
    assert (
        f"{path}: notices.lab_training_v1.languages.da.retention: says '30 dage' but "
        "retention_days is 365: the notice must state the retention the system applies (R5, R25)"
    ) in caught.value.errors
    assert any("languages.en.retention: says '30 days'" in e for e in caught.value.errors)


def test_three_months_in_the_text_fits_a_90_day_retention(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    set_training_retention(
        data, 90, "Vi sletter den efter 3 måneder", "We delete it after 3 months"
    )
    load_config(write(tmp_path, data), env=ENV)


def test_a_retention_without_a_period_is_a_warning_to_compare_by_hand(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    set_training_retention(
        data, 30, "Vi sletter den, når sagen er afsluttet", "We delete it when the case is closed"
    )
    config = load_config(write(tmp_path, data), env=ENV)
    assert any(
        "lab_training_v1.languages.da.retention: states no period" in w for w in config.warnings
    )


# -- notice versions against the archive ---------------------------------------------------


def test_check_config_refuses_a_retention_change_under_an_archived_version(
    tmp_path: Path,
    data: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALLCONSENT_ARI_PASSWORD", "callconsent-lab")
    install_prompts(data)
    assert NoticeArchiver(load_config(write(tmp_path, data), env=ENV)).archive_all()
    set_training_retention(data, 60, "Vi sletter den efter 60 dage", "We delete it after 60 days")
    path = write(tmp_path, data)
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        "notices.lab_training_v1: version '1' was archived (sha256 " in err
        and "retention_days 30 -> 60. A change of purpose, lawful basis or retention needs a new "
        "notice (new name and version, with its own text), never an edit (R20)"
        in err
    )
    assert f"FAILED: {path} (1 error(s))" in err
    assert main(["serve", "--config", str(path)]) == 2  # serve refuses it too


def test_a_new_version_of_the_notice_passes_the_archive_check(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    install_prompts(data)
    assert NoticeArchiver(load_config(write(tmp_path, data), env=ENV)).archive_all()
    set_training_retention(data, 60, "Vi sletter den efter 60 dage", "We delete it after 60 days")
    data["notices"]["lab_training_v1"]["version"] = "2"
    assert archive_conflicts(load_config(write(tmp_path, data), env=ENV)) == []


def test_an_unchanged_config_passes_the_archive_check(tmp_path: Path, data: dict[str, Any]) -> None:
    install_prompts(data)
    config = load_config(write(tmp_path, data), env=ENV)
    assert NoticeArchiver(config).archive_all()
    assert archive_conflicts(config) == []


# -- serve archives what it plays ----------------------------------------------------------


def test_the_planner_archives_a_notice_version_first_played_while_serving(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    install_prompts(data)
    config = load_config(write(tmp_path, data), env=ENV)
    archiver = NoticeArchiver(config)
    assert archiver.archive_all()
    archive = config.storage.notice_archive_dir
    before = {p.name for p in archive.glob("*.json")}
    studio = Path(data["prompts_dir"]) / "da" / "lab-training-v1.wav"
    studio.write_bytes(b"a studio recording put in place while serve runs")
    plan = ConfigPlanner(config, archiver=archiver).plan("support", None)
    assert isinstance(plan, CallPlan)
    new = {p.name for p in archive.glob("*.json")} - before
    assert len(new) == 1
    meta = json.loads((archive / new.pop()).read_text("utf-8"))
    assert meta["notice"] == "lab_training_v1" and meta["retention_days"] == 30
    assert meta["sha256"] in plan_versions(plan)
    assert (archive / f"{meta['sha256']}.wav").read_bytes() == studio.read_bytes()


# -- the rights a notice names -------------------------------------------------------------


def test_unconditional_erasure_under_legitimate_interest_is_a_warning(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    da = data["notices"]["lab_docs_v1"]["languages"]["da"]
    da["transcript"] = da["transcript"].replace(da["rights"], "Du har ret til indsigt og sletning")
    da["rights"] = "Du har ret til indsigt og sletning"
    config = load_config(write(tmp_path, data), env=ENV)
    assert any(
        w.endswith(
            "notices.lab_docs_v1.languages.da.rights: promises erasure without a "
            "condition, but under 6(1)(f) the right to erasure applies only in some cases "
            "(Art 17(1)(c), 17(3)); say e.g. 'og, i visse tilfælde, til sletning' / "
            "'and, in some cases, erasure'"
        )
        for w in config.warnings
    )


def test_the_shipped_notices_promise_no_unconditional_erasure() -> None:
    config = load_config(REPO / "config" / "callconsent.yaml", env=ENV)
    assert not any("promises erasure" in w for w in config.warnings)
    text = config.notices["documentation_v1"].languages["da"].rights
    assert "i visse tilfælde" in text
