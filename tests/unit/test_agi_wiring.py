"""``callconsent serve``'s FastAGI server wiring (issue 17): disabled, or unable to listen, it
is no server and the app runs on (the AGI hook's calls then go on unrecorded)."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

from structlog.testing import capture_logs

from callconsent.agi.adapter import AgiFlow
from callconsent.app import ConfigPlanner, build_store, start_agi
from callconsent.config import AgiConfig, Config
from tests.support.stasis_fakes import load_demo


def _flow(config: Config) -> AgiFlow:
    return AgiFlow(ConfigPlanner(config), build_store(config))


async def test_disabled_agi_starts_no_server(tmp_path: Path) -> None:
    config = load_demo(tmp_path)
    config = dataclasses.replace(config, agi=AgiConfig(enabled=False))
    assert await start_agi(config, _flow(config)) is None


async def test_port_in_use_is_logged_and_serve_runs_on_without_agi(tmp_path: Path) -> None:
    config = load_demo(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = dataclasses.replace(config, agi=AgiConfig(port=port))
        with capture_logs() as logs:
            assert await start_agi(config, _flow(config)) is None
    assert [e["port"] for e in logs if e["event"] == "agi_listen_failed"] == [port]


async def test_enabled_agi_listens_on_the_configured_address(tmp_path: Path) -> None:
    config = load_demo(tmp_path)
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = dataclasses.replace(config, agi=AgiConfig(port=port))
    server = await start_agi(config, _flow(config))
    assert server is not None and server.port == port
    await server.close(grace=1.0)
