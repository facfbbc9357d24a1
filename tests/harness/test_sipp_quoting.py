"""Hostile caller ID becomes well-formed SIP; scenario XML stays well-formed."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `tests.harness` without a conftest
from tests.harness.sipp import Call, scenario_xml, sip_display_name, sip_user_part


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("Alice", '"Alice"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("cr\r\nlf\x00", '"crlf"'),
        ("tab\there", '"tab\there"'),
        ("../;$%0d%0a", '"../;$%0d%0a"'),
        ("Æblegrød", '"Æblegrød"'),
        ("", ""),
    ],
)
def test_display_name(name: str, wire: str) -> None:
    assert sip_display_name(name) == wire


@pytest.mark.parametrize(
    ("number", "wire"),
    [
        ("+4512345678", "+4512345678"),
        ("+45;../$x", "+45;../$x"),
        ("%0d%0a", "%0d%0a"),  # a valid escape stays as sent
        ("100%", "100%25"),
        ("%zz", "%25zz"),
        ('a"b<c>d@e f:g', "a%22b%3Cc%3Ed%40e%20f%3Ag"),
        ("ø", "%C3%B8"),
        ("", "anonymous"),
    ],
)
def test_user_part(number: str, wire: str) -> None:
    assert sip_user_part(number) == wire


def test_long_values_are_kept() -> None:
    assert sip_user_part("9" * 200) == "9" * 200
    assert sip_display_name("N" * 200) == '"' + "N" * 200 + '"'


def test_scenario_is_well_formed_xml(tmp_path: Path) -> None:
    pcap = tmp_path / 'we"ird<&>.pcap'
    root = ET.fromstring(scenario_xml(pcap, 30.0, 5.0).encode())  # noqa: S314  (our own XML)
    assert root.tag == "scenario"
    plays = [e.get("play_pcap_audio") for e in root.iter("exec")]
    assert plays == [str(pcap)]


def test_call_validates_route_and_call_id() -> None:
    with pytest.raises(ValueError):
        Call(to="sup port")
    with pytest.raises(ValueError):
        Call(to="support", call_id="a b")
    assert Call(to="support").call_id != Call(to="support").call_id


def test_scenario_with_sip_info_digits_is_well_formed_and_sends_them(tmp_path: Path) -> None:
    pcap = tmp_path / "x.pcap"
    xml = scenario_xml(pcap, 30.0, 10.0, [(4.0, "1"), (2.0, "5")])
    root = ET.fromstring(xml.encode())  # noqa: S314  (our own XML)
    assert root.tag == "scenario"
    assert xml.count("INFO sip:") == 2
    assert xml.index("Signal=5") < xml.index("Signal=1")  # in time order
    assert '<pause milliseconds="2000"/>' in xml and 'timeout="6000"' in xml
