"""AstDB marker recovery (``callconsent.markers``): one loop for every kind of marker."""

from __future__ import annotations

from structlog.testing import capture_logs

from callconsent import markers, names
from callconsent.ami import AmiError


class TreeAmi:
    def __init__(self, tree: list[tuple[str, str]] | None) -> None:
        self.tree = tree
        self.asked: list[tuple[str, str]] = []

    async def db_tree(self, family: str, key: str) -> list[tuple[str, str]]:
        self.asked.append((family, key))
        if self.tree is None:
            raise AmiError("DBGetTree", "not connected")
        return self.tree


async def test_every_marker_is_handed_to_finish_and_the_finished_ones_are_counted() -> None:
    ami = TreeAmi([("/callconsent/x/1", "a"), ("/callconsent/x/2", "b"), ("/callconsent/x/3", "c")])
    seen: list[tuple[str, str]] = []

    async def finish(key: str, value: str) -> bool:
        seen.append((key, value))
        return value != "b"

    with capture_logs() as logs:
        done = await markers.recover(ami, "x/", finish, what="test_markers")
    assert done == 2
    assert seen == ami.tree
    assert ami.asked == [(names.ASTDB_FAMILY, "x")]
    assert {"event": "test_markers_recovered", "markers": 3, "finished": 2} in [
        {k: e[k] for k in ("event", "markers", "finished") if k in e} for e in logs
    ]


async def test_unreadable_astdb_finishes_nothing_and_logs_an_error() -> None:
    async def finish(key: str, value: str) -> bool:
        raise AssertionError("nothing to finish when AstDB cannot be read")

    with capture_logs() as logs:
        assert await markers.recover(TreeAmi(None), "x/", finish, what="test_markers") == 0
    assert [e["event"] for e in logs] == ["test_markers_unreadable"]


async def test_no_markers_logs_nothing() -> None:
    async def finish(key: str, value: str) -> bool:
        return True

    with capture_logs() as logs:
        assert await markers.recover(TreeAmi([]), "x/", finish, what="test_markers") == 0
    assert logs == []
