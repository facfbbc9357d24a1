"""Fixtures for end-to-end tests against the real Asterisk sandbox.

Every test in tests/e2e is marked ``e2e``. The session-scoped ``asterisk`` fixture runs
``scripts/asterisk-sandbox up`` (idempotent: builds the chroot the first time, reloads the
config when already up) and yields an :class:`tests.harness.asterisk.AsteriskLab`. Asterisk is
left running after the session (for speed); ``.ci/run`` stops it.

When the sandbox cannot run here (not root, no debootstrap, no sipp, a port held by another
program, ...), the tests are skipped with the reason, except under ``CI=true``, where they fail.

Writing a test:

    from tests.harness.sipp import Call, Digit, Pause, run_call

    def test_x(asterisk: AsteriskLab) -> None:
        mark = asterisk.log_offset()
        result = run_call(Call(to="support", timeline=[Pause(6.0), Digit("1"), Pause(10.0)]))
        assert result.ok, result.describe()
        dest = asterisk.wait_labdest(result.call_id, since=mark)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(
    0, str(Path(__file__).resolve().parents[2])
)  # `tests.harness` without a root conftest
from callconsent.config import Config
from tests.e2e.lab_app import LabApp
from tests.harness.asterisk import AsteriskLab, sandbox, sandbox_unavailable_reason
from tests.support.lab import lab_config

E2E_DIR = Path(__file__).resolve().parent


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"the Asterisk sandbox is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"Asterisk sandbox not available: {reason}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def asterisk() -> Iterator[AsteriskLab]:
    """The running lab Asterisk (started if needed, never stopped by the tests)."""
    reason = sandbox_unavailable_reason()
    if reason:
        _unavailable(reason)
    proc = sandbox("up", check=False)
    if proc.returncode != 0:
        _unavailable(f"scripts/asterisk-sandbox up failed:\n{proc.stderr.strip()}")
    yield AsteriskLab.from_sandbox()


@pytest.fixture
def log_mark(asterisk: AsteriskLab) -> int:
    """The full log's offset when the test starts: pass as ``since=`` to see only this test's lines."""
    return asterisk.log_offset()


@pytest.fixture(scope="session")
def config() -> Config:
    """config/demo.yaml with the lab's ARI password."""
    return lab_config()


@pytest.fixture(scope="session")
def lab_app(asterisk: AsteriskLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabApp]:
    """``callconsent serve`` on config/demo.yaml, connected to the lab Asterisk."""
    # debug: the fault tests time their kills on the machine's consent_state lines, which the
    # live path logs at debug level only
    app = LabApp(tmp_path_factory.mktemp("app") / "serve.log", log_level="debug")
    app.start()
    yield app
    app.stop()
