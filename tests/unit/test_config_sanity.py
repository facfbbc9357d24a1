"""Config sanity (issue 12 item 7): storage never in system folders or inside each other,
retention at most 10 years, no YAML aliases, a size cap, a config file that is a regular file.
(Secret files are read when a command connects: ``config/_secret.py`` checks them.)"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from callconsent.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
ENV = {"CALLCONSENT_ARI_PASSWORD": "callconsent-lab"}


def demo(tmp_path: Path) -> dict[str, Any]:
    data = copy.deepcopy(yaml.safe_load((REPO / "config" / "demo.yaml").read_text("utf-8")))
    data["storage"] = {
        "recordings_dir": str(tmp_path / "recordings"),
        "ledger_path": str(tmp_path / "state" / "ledger.jsonl"),
        "notice_archive_dir": str(tmp_path / "state" / "notices"),
    }
    return data


def errors_of(tmp_path: Path, data: object) -> list[str]:
    path = tmp_path / "callconsent.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV)
    return list(caught.value.errors)


def test_the_demo_storage_layout_under_a_private_folder_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "callconsent.yaml"
    path.write_text(yaml.safe_dump(demo(tmp_path), allow_unicode=True), "utf-8")
    assert load_config(path, env=ENV).storage.recordings_dir == tmp_path / "recordings"


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("recordings_dir", "/", "/ is a system folder"),
        ("recordings_dir", "/etc", "/etc is in the system folder /etc"),
        ("recordings_dir", "/var", "/var is a system folder"),
        ("recordings_dir", "/usr/share/rec", "in the system folder /usr"),
        ("ledger_path", "/etc/passwd", "/etc/passwd is in the system folder /etc"),
        ("notice_archive_dir", "/boot/notices", "in the system folder /boot"),
        ("recordings_dir", "/var/../etc/x", "in the system folder /etc"),
    ],
)
def test_a_storage_path_in_a_system_folder_is_refused_naming_the_key(
    tmp_path: Path, key: str, value: str, words: str
) -> None:
    data = demo(tmp_path)
    data["storage"][key] = value
    errors = errors_of(tmp_path, data)
    assert any(f"callconsent.yaml: storage.{key}: " in e and words in e for e in errors), errors


def test_a_storage_path_reaching_a_system_folder_through_a_symlink_is_refused(
    tmp_path: Path,
) -> None:
    (tmp_path / "innocent").symlink_to("/etc")
    data = demo(tmp_path)
    data["storage"]["recordings_dir"] = str(tmp_path / "innocent")
    assert any(
        "storage.recordings_dir: /etc is in the system folder" in e
        for e in errors_of(tmp_path, data)
    )


def test_the_ledger_inside_the_recordings_folder_is_refused(tmp_path: Path) -> None:
    data = demo(tmp_path)
    data["storage"]["ledger_path"] = str(tmp_path / "recordings" / "ledger.jsonl")
    data["storage"]["notice_archive_dir"] = str(tmp_path / "recordings" / "2026")
    errors = errors_of(tmp_path, data)
    assert any("storage.ledger_path:" in e and "inside recordings_dir" in e for e in errors)
    assert any("storage.notice_archive_dir:" in e and "inside recordings_dir" in e for e in errors)


def test_a_ledger_path_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state" / "ledger.jsonl").mkdir(parents=True)
    errors = errors_of(tmp_path, demo(tmp_path))
    assert any("storage.ledger_path:" in e and "is a folder, not a file" in e for e in errors)


@pytest.mark.parametrize("days", [3651, 1_000_000_000])
def test_retention_beyond_ten_years_is_refused_in_routes_and_notices(
    tmp_path: Path, days: int
) -> None:
    data = demo(tmp_path)
    route = next(iter(data["routes"].values()))
    purpose = next(iter(route["purposes"].values()))
    purpose["retention_days"] = days
    notice = next(iter(data["notices"].values()))
    notice["retention_days"] = days
    errors = errors_of(tmp_path, data)
    assert (
        sum(
            f"retention_days: must be at most 3650 days (10 years), got {days}" in e for e in errors
        )
        >= 2
    )


def test_a_yaml_alias_bomb_is_refused_at_once_naming_the_line(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, 10):
        refs = ", ".join([f"*a{n - 1}"] * 9)
        lines.append(f"a{n}: &a{n} [{refs}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV)
    assert time.monotonic() - started < 2
    assert f"{path}:2: YAML syntax error: YAML aliases (*a0) are not allowed" in str(caught.value)


def test_a_config_over_one_megabyte_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# padding\n" * 110_000)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="1,100,000 bytes; at most 1,048,576 are read"):
        load_config(path, env=ENV)
    assert time.monotonic() - started < 1


def test_a_config_that_is_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is a FIFO, not a regular file"):
        load_config(fifo, env=ENV)
