"""AMI that reports no keys, on the real Asterisk (callconsent.stasis_ami): the app reaches AMI
through a proxy the test controls (tests/harness/tcp_proxy.py, 127.0.0.1:5039) that drops every
``DTMFEnd``, as Asterisk does for an AMI user without the ``dtmf`` class or the ``DTMFEnd``
eventfilter (a manager.conf older than the app's).

The promise: a late objection key is never lost to such a manager.conf. The app keeps
subscribing recorded calls over ARI, the objection counts, and the app says once what to change.
The proxy's count also shows that Asterisk reports the consent key, pressed while the caller is
in Stasis, over AMI (what lets the app trust AMI's keys on a correct manager.conf)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from callconsent.config import Config
from tests.e2e.faults import app_behind_ami_proxy, app_events, wait_until
from tests.e2e.lab_app import LabApp, route_timing
from tests.e2e.objection_calls import object_after_the_notice
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Digit, Pause, run_call
from tests.harness.tcp_proxy import TcpProxy

AMI_PROXY_PORT = 5039


@pytest.fixture(scope="module")
def keyless_ami(
    asterisk: AsteriskLab, lab_app: LabApp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LabApp, TcpProxy]]:
    folder = tmp_path_factory.mktemp("ami-keyless")
    with (
        TcpProxy(AMI_PROXY_PORT, 5038, drop_events={"DTMFEnd"}) as proxy,
        app_behind_ami_proxy(lab_app, folder, proxy) as app,
    ):
        yield app, proxy


def test_without_amis_keys_a_late_objection_still_counts_and_the_app_says_what_to_change(
    asterisk: AsteriskLab, config: Config, keyless_ami: tuple[LabApp, TcpProxy]
) -> None:
    app, proxy = keyless_ami
    support = route_timing(config, "support")
    since = app.log_path.stat().st_size

    consented = run_call(
        Call(to="support", timeline=[Pause(support.question_end + 1.0), Digit("1"), Pause(3.0)])
    )
    assert consented.ok, consented.describe()
    # Asterisk reported the consent key, pressed in Stasis, over AMI: the proxy dropped it
    assert proxy.events_dropped >= 1

    object_after_the_notice(asterisk, config)  # counted: heard over ARI

    def unheard() -> list[dict[str, Any]]:
        return [e for e in app_events(app.log_path, since) if e.get("event") == "ami_keys_unheard"]

    # said 10 s (KEY_WAIT_SECONDS) after the consent key, once for this login
    wait_until(lambda: bool(unheard()), timeout=15, what="the ami_keys_unheard warning")
    events = app_events(app.log_path, since)
    assert len(unheard()) == 1, [e.get("event") for e in events]
    assert "read = call,user,dtmf" in unheard()[0]["fix"]
    assert not any(e.get("event") == "ami_keys_heard" for e in events)
