"""Calls the hook let go while the app was away are counted in the ledger (R36)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from callconsent import names
from callconsent.ami import AmiError
from callconsent.evidence.ledger import iter_entries, verify_chain
from callconsent.unavailable import rules
from callconsent.unavailable.adapter import UnavailableCollector

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
KEY = "/callconsent/unavailable/"


class FakeAmi:
    def __init__(self, tree: list[tuple[str, str]], *, fail: str | None = None) -> None:
        self.tree = list(tree)
        self.fail = fail
        self.deleted: list[tuple[str, str]] = []

    async def db_tree(self, family: str, key: str) -> list[tuple[str, str]]:
        assert (family, key) == (names.ASTDB_FAMILY, "unavailable")
        if self.fail == "db_tree":
            raise AmiError("DBGetTree", "not connected")
        return list(self.tree)

    async def db_del(self, family: str, key: str) -> None:
        if self.fail == "db_del":
            raise AmiError("DBDel", "not connected")
        self.deleted.append((family, key))


def entries(path: Path) -> list[dict[str, object]]:
    return [line.entry for line in iter_entries(path) if line.entry is not None]


def test_a_marker_the_hook_writes_is_parsed() -> None:
    marker = rules.parse_marker(KEY + "1764932400.17", "2026-12-05T08:00:01.250Z mixed-queue")
    assert marker == rules.Marker(
        KEY + "1764932400.17",
        "1764932400.17",
        datetime(2026, 12, 5, 8, 0, 1, 250000, tzinfo=UTC),
        "mixed-queue",
    )


def test_a_marker_without_a_route_has_route_none() -> None:
    marker = rules.parse_marker(KEY + "1.2", "2026-12-05T08:00:01.250Z ")
    assert marker is not None and marker.route is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (KEY + "..", "2026-12-05T08:00:01.250Z support"),
        (KEY + "1..2", "2026-12-05T08:00:01.250Z support"),
        (KEY + "1.2", "yesterday support"),
        (KEY + "1.2", "2026-12-05T08:00:01.250Z sup port"),
        (KEY + "1.2", "2026-12-05T08:00:01.250Z ../x"),
        (KEY + "1.2", ""),
    ],
)
def test_a_marker_the_hook_cannot_have_written_is_refused(key: str, value: str) -> None:
    assert rules.parse_marker(key, value) is None


def test_markers_are_counted_per_day_and_route_oldest_first() -> None:
    raw = [
        ("1.3", "2026-12-05T00:00:02.000Z support"),
        ("1.1", "2026-12-04T23:59:59.000Z support"),
        ("1.2", "2026-12-05T00:00:01.000Z support"),
        ("1.4", "2026-12-05T00:00:03.000Z docs"),
    ]
    markers = [rules.parse_marker(KEY + k, v) for k, v in raw]
    out = rules.entries([m for m in markers if m is not None], now=NOW)
    got = [(e["day"], e["route"], e["count"], e["calls"], keys) for e, keys in out]
    assert got == [
        ("2026-12-04", "support", 1, ["1.1"], [KEY + "1.1"]),
        ("2026-12-05", "docs", 1, ["1.4"], [KEY + "1.4"]),
        ("2026-12-05", "support", 2, ["1.2", "1.3"], [KEY + "1.2", KEY + "1.3"]),
    ]
    assert out[2][0]["first_at"] == "2026-12-05T00:00:01.000Z"
    assert out[2][0]["last_at"] == "2026-12-05T00:00:02.000Z"


async def test_collect_writes_the_entries_then_deletes_the_markers(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    ami = FakeAmi(
        [
            (KEY + "1.1", "2026-12-05T08:00:00.000Z support"),
            (KEY + "1.2", "2026-12-05T08:00:05.000Z support"),
            (KEY + "evil;x", "2026-12-05T08:00:05.000Z support"),
        ]
    )
    collector = UnavailableCollector(ami, ledger, clock=lambda: NOW)

    assert await collector.collect() == 2

    (entry,) = entries(ledger)
    assert (entry["type"], entry["status"], entry["reason"]) == (
        "unavailable",
        "unavailable",
        "app_unavailable",
    )
    assert (entry["count"], entry["calls"], entry["route"]) == (2, ["1.1", "1.2"], "support")
    assert ami.deleted == [("callconsent", "unavailable/1.1"), ("callconsent", "unavailable/1.2")]
    assert verify_chain(ledger) == []


async def test_collect_without_markers_writes_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    assert await UnavailableCollector(FakeAmi([]), ledger).collect() == 0
    assert not ledger.exists()


async def test_markers_stay_when_the_ledger_cannot_be_written(tmp_path: Path) -> None:
    """The next login tries again: a count is never lost for a full or read-only disk."""
    (tmp_path / "state").write_text("not a folder")
    ami = FakeAmi([(KEY + "1.1", "2026-12-05T08:00:00.000Z support")])
    collector = UnavailableCollector(ami, tmp_path / "state" / "ledger.jsonl")

    assert await collector.collect() == 0
    assert ami.deleted == []


async def test_unreadable_markers_are_logged_and_nothing_is_written(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    ami = FakeAmi([(KEY + "1.1", "2026-12-05T08:00:00.000Z support")], fail="db_tree")
    assert await UnavailableCollector(ami, ledger).collect() == 0
    assert not ledger.exists()


async def test_a_marker_left_undeleted_repeats_its_uniqueid_at_the_next_login(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    ami = FakeAmi([(KEY + "1.1", "2026-12-05T08:00:00.000Z support")], fail="db_del")
    collector = UnavailableCollector(ami, ledger, clock=lambda: NOW)
    await collector.collect()
    await collector.collect()
    assert [e["calls"] for e in entries(ledger)] == [["1.1"], ["1.1"]]
