"""The AMI client's idea of being logged in follows panoramisk's login and disconnect callbacks."""

from __future__ import annotations

from types import SimpleNamespace

from callconsent.ami import Ami


def _ami() -> Ami:
    ami = Ami(host="127.0.0.1", port=5038, username="u", password="p")
    ami._manager = SimpleNamespace(authenticated=True)  # type: ignore[assignment]
    return ami


def test_connected_only_after_a_login() -> None:
    ami = _ami()
    assert not ami.connected
    ami._logged_in_cb(None)  # type: ignore[arg-type]
    assert ami.connected


def test_not_connected_once_the_connection_is_lost() -> None:
    """panoramisk leaves ``authenticated`` true until the next login attempt gets through."""
    ami = _ami()
    ami._logged_in_cb(None)  # type: ignore[arg-type]
    ami._disconnected_cb(None, OSError("connection lost"))  # type: ignore[arg-type]
    assert not ami.connected
