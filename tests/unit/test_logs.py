"""Logging set-up: the standard library's loggers (aiohttp, panoramisk) speak structlog's JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from callconsent import logs


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_stdlib_log_records_from_libraries_are_rendered_as_structlog_json_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("info", json=True)
    logging.getLogger("panoramisk.manager").warning("connection lost to %s:%d", "127.0.0.1", 5038)
    structlog.get_logger("callconsent.app").info("serving", app="callconsent")
    lines = _lines(capsys.readouterr().err)
    assert lines[0]["event"] == "connection lost to 127.0.0.1:5038"
    assert lines[0]["level"] == "warning"
    assert lines[0]["logger"] == "panoramisk.manager"
    assert str(lines[0]["timestamp"]).endswith("Z")
    assert lines[1]["event"] == "serving" and lines[1]["level"] == "info"


def test_stdlib_records_below_the_configured_level_are_dropped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("warning", json=True)
    logging.getLogger("aiohttp.access").info("GET /metrics 200")
    logging.getLogger("aiohttp.client").error("boom")
    lines = _lines(capsys.readouterr().err)
    assert [line["event"] for line in lines] == ["boom"]


def test_a_stdlib_exception_is_rendered_inside_the_json_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("info", json=True)
    try:
        raise RuntimeError("socket closed")
    except RuntimeError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    (line,) = _lines(capsys.readouterr().err)
    assert "RuntimeError: socket closed" in str(line["exception"])


def test_configuring_twice_installs_one_handler_not_two(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info", json=True)
    logs.configure("info", json=True)
    logging.getLogger("aiohttp.server").warning("once")
    assert len(_lines(capsys.readouterr().err)) == 1


def test_a_librarys_line_with_an_ami_login_shows_no_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("info", json=True)
    login = {"Action": "Login", "Username": "callconsent", "Secret": "s3cret-x", "Events": "call"}
    logging.getLogger("panoramisk.ami_protocol").info(
        'Adding action "login" to awaiting list: %s', login
    )
    logging.getLogger("panoramisk.manager").error(
        "Fail to send %r", "Action: Login\r\nSecret: s3cret-y"
    )
    err = capsys.readouterr().err
    assert "s3cret" not in err
    lines = _lines(err)
    assert "'Secret': '***'" in str(lines[0]["event"])
    assert "'Username': 'callconsent'" in str(lines[0]["event"])  # the rest stays readable
    assert "Secret: ***" in str(lines[1]["event"])
