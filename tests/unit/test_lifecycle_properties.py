"""Property tests (issue 12): whatever a chain-valid ledger line or a sidecar says, no lifecycle
command crashes (a :class:`LifecycleError` with a message is an answer, not a crash) and none
touches another subject's data."""

from __future__ import annotations

import json
import tempfile
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callconsent.evidence.ledger import iter_entries
from callconsent.lifecycle.anonymise import anonymise
from callconsent.lifecycle.erase import erase
from callconsent.lifecycle.errors import LifecycleError
from callconsent.lifecycle.export import export
from callconsent.lifecycle.hold import set_hold
from callconsent.lifecycle.identify import identify
from callconsent.lifecycle.purge import purge
from callconsent.lifecycle.query import Selector
from callconsent.lifecycle.reconcile import reconcile
from callconsent.lifecycle.ropa import build_ropa
from callconsent.lifecycle.verify import verify
from callconsent.lifecycle.withdraw import Scope, withdraw
from tests.support.lifecycle_fixtures import NUMBER, T0, Store, make_config, make_store
from tests.support.mutations import tampered
from tests.support.tamper import append_chained

OTHER = "+4587654321"  # the other subject: nothing of theirs may be touched or handed out
NOW = T0 + timedelta(days=5)
HOSTILE = (
    "3000.4", "2026/01/05/3000.4.wav", OTHER, NUMBER, "3000.1", "2026/01/05/3000.1.wav",
    ["3000.4"], ["3000.1", "3000.4"], {"uniqueid": "3000.4"},
)  # fmt: skip
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _evidence(folder: Path) -> tuple[Store, dict[Path, bytes]]:
    """Two subjects' calls; the other subject's files and ledger lines (keyed by path, the
    ledger lines under the ledger's path + ``#n``)."""
    store = make_store(folder)
    store.call("3000.1", when=T0)
    store.call("3000.2", when=T0, purposes=("training",))
    store.call("3000.3", when=T0, purposes=("training",), refused=True)
    store.call("3000.4", OTHER, when=T0, purposes=("documentation", "training"))
    theirs = {p: p.read_bytes() for p in (folder / "recordings").rglob("3000.4.*")}
    for line in iter_entries(store.ledger_path):
        if line.entry is not None and line.entry.get("call", {}).get("uniqueid") == "3000.4":
            theirs[Path(f"{store.ledger_path}#{line.line_no}")] = line.raw
    return store, theirs


def _entries(store: Store) -> list[dict[str, Any]]:
    return [e.entry for e in iter_entries(store.ledger_path) if e.entry is not None]


def _run_every_command(store: Store, folder: Path) -> list[tuple[str, bytes]]:
    """Each lifecycle job on the subject ``NUMBER``; what the export handed out."""
    config = make_config(folder)
    handed_out: list[tuple[str, bytes]] = []
    jobs = [
        lambda ctx: ctx.index.update(),
        lambda ctx: purge(ctx, dry_run=True),
        lambda ctx: set_hold(ctx, "3000.2", reason="r", case_ref="C", review_date=date(2027, 1, 1)),
        lambda ctx: handed_out.extend(_exported(ctx, config, folder)),
        lambda ctx: identify(ctx, folder / "recordings/2026/01/05/3000.4.wav"),
        lambda ctx: withdraw(ctx, Scope(number=NUMBER), reason="r"),
        lambda ctx: erase(ctx, Selector(number=NUMBER), reason="r"),
        lambda ctx: anonymise(ctx, dry_run=True),
        lambda ctx: build_ropa(ctx, config, claims_days=1095),
        lambda ctx: purge(ctx, dry_run=False),
    ]
    for job in jobs:
        try:
            with store.context(NOW) as ctx:
                job(ctx)
        except LifecycleError as exc:
            assert str(exc)  # a clear answer, not a crash
    verify(store.root, store.ledger_path)
    reconcile(store.root, store.ledger, now=NOW, dry_run=True)
    return handed_out


def _exported(ctx: Any, config: Any, folder: Path) -> list[tuple[str, bytes]]:
    result = export(ctx, config, Selector(number=NUMBER), reason="r", out_dir=folder / "x")
    with zipfile.ZipFile(result.archive) as zf:
        return [(name, zf.read(name)) for name in zf.namelist()]


def _untouched(theirs: dict[Path, bytes], handed_out: list[tuple[str, bytes]]) -> None:
    """The other subject's files are unchanged, and nothing of theirs was handed out."""
    ledger_lines = set()
    for path, data in theirs.items():
        if "#" in path.name:
            ledger_lines.add(data)
        else:
            assert path.read_bytes() == data, f"{path} changed"
    for name, data in handed_out:
        assert ".." not in name and not name.startswith("/"), name
        assert "3000.4" not in name, name
        assert data not in theirs.values(), f"{name} is the other subject's file"
        if name == "ledger-entries.jsonl":
            assert not ledger_lines & set(data.splitlines()), "their ledger line handed out"


@SETTINGS
@given(data=st.data())
def test_no_command_crashes_or_touches_another_subject_whatever_a_chained_line_says(
    data: st.DataObject,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store, theirs = _evidence(folder)
        entries = _entries(store)
        for _ in range(data.draw(st.integers(1, 3))):
            original = data.draw(st.sampled_from(entries))
            append_chained(store.ledger_path, data.draw(tampered(original, *HOSTILE)))
        _untouched(theirs, _run_every_command(store, folder))


@SETTINGS
@given(data=st.data())
def test_no_command_crashes_or_touches_another_subject_whatever_a_sidecar_says(
    data: st.DataObject,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store, theirs = _evidence(folder)
        target = (
            folder
            / "recordings/2026/01/05"
            / data.draw(st.sampled_from(["3000.1.json", "3000.2.json"]))
        )
        doc = json.loads(target.read_bytes())
        target.write_text(json.dumps(data.draw(tampered(doc, *HOSTILE))), "utf-8")
        _untouched(theirs, _run_every_command(store, folder))
