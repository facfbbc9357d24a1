"""Fewer ARI requests per call: the result variables in one ``ARRAY()`` write, and what the
app reads at StasisStart taken from the event (ari.conf ``channelvars``) when it is there."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callconsent import names
from callconsent.ari import AriClient
from callconsent.dialplan_args import ARRAY_MAX, array_assignment
from tests.support import FakeAriServer
from tests.support.ari_server import DEFAULT_PASSWORD
from tests.support.dialplan_split import separate_args
from tests.support.sealed import caller_of
from tests.support.stasis_fakes import Harness, stasis_start

CID = "1764000020.1"


def test_a_value_with_asterisks_argument_characters_splits_back_to_itself() -> None:
    values = ["a,b", 'q"uote', "back\\slash", "(paren", "brack]et", "", "plain/path.wav"]
    pairs = [(f"V{i}", value) for i, value in enumerate(values)]
    name, value = array_assignment(pairs)
    assert name == "ARRAY(" + ",".join(n for n, _ in pairs) + ")"
    assert separate_args(value) == values


@given(st.lists(st.text(alphabet=st.characters(exclude_characters="\x00")), min_size=2))
def test_every_list_of_values_survives_the_array_write(values: list[str]) -> None:
    values = values[:ARRAY_MAX]
    _, value = array_assignment([(f"V{i}", v) for i, v in enumerate(values)])
    assert separate_args(value) == values


@pytest.mark.parametrize("name", ["A,B", "A)", "", "1ABC", "A B", "___A", "A(x)"])
def test_a_name_that_is_not_a_plain_variable_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="plain variable name"):
        array_assignment([(name, "x"), ("B", "y")])


def test_inherited_names_are_plain_names() -> None:
    name, _ = array_assignment([("__CALLCONSENT_CALLER", "1.1"), ("_ONE", "x")])
    assert name == "ARRAY(__CALLCONSENT_CALLER,_ONE)"


def test_more_variables_than_array_takes_are_refused() -> None:
    with pytest.raises(ValueError, match="ARRAY sets"):
        array_assignment([(f"V{i}", "x") for i in range(ARRAY_MAX + 1)])


@pytest.fixture
async def client() -> AsyncIterator[tuple[FakeAriServer, AriClient]]:
    async with FakeAriServer() as server:
        ari = AriClient(server.base_url, "asterisk", DEFAULT_PASSWORD, "callconsent")
        yield server, ari
        await ari.close()


async def test_set_variables_is_one_request(client: tuple[FakeAriServer, AriClient]) -> None:
    server, ari = client
    server.add_channel("c1")
    await ari.set_variables("c1", [("A", "x,y"), ("__B", "z")])
    (call,) = server.calls_to("POST", "channels", "c1", "variable")
    assert server.channels["c1"] == {"ARRAY(A,__B)": "x\\,y,z"}
    assert call.method == "POST"


async def test_set_variables_of_one_pair_sets_it_plainly(
    client: tuple[FakeAriServer, AriClient],
) -> None:
    server, ari = client
    server.add_channel("c1")
    await ari.set_variables("c1", [("A", "x,y")])
    assert server.channels["c1"] == {"A": "x,y"}


async def test_the_consent_result_is_set_in_one_ari_request(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start(CID)
    await h.play_through(CID)
    await h.play_through(CID)
    await h.digit(CID, "1")

    (batch,) = h.ari.of("set_variables", CID)
    assert [name for name, _ in batch[2]][-1] == names.VAR_STATUS  # STATUS last
    assert h.ari.result(CID)[names.VAR_STATUS] == "given"


async def test_channelvars_in_stasis_start_spare_the_variable_requests(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    shown = {
        "CHANNEL(linkedid)": "1764000019.9",
        "CALLERID(dnid)": "4570000000",
        names.VAR_CALLERID_RAW_NUM: "+45 as sent, 1",
        names.VAR_CALLERID_RAW_NAME: 'Name "as sent"',
    }
    await h.send(CID, stasis_start(CID, number="+451", name="normalised", channelvars=shown))
    await h.play_through(CID)
    await h.play_through(CID)
    await h.digit(CID, "1")

    assert h.ari.of("get_variable") == []
    (entry,) = h.ledger()
    call = entry["call"]
    caller = caller_of(entry, h.ledger_path)  # support keeps display names in the lab config
    assert (caller.number, caller.name) == ("+45 as sent, 1", 'Name "as sent"')
    assert call["dialled_number"] == "4570000000"
    (sidecar,) = h.sidecars()
    assert json.loads(sidecar.read_text())["call"]["linkedid"] == "1764000019.9"


async def test_channelvars_without_the_raw_caller_id_fall_back_to_ari(tmp_path: Path) -> None:
    h = Harness(tmp_path)  # ari.conf lists only some of the variables: ask for the rest
    h.ari.channel_vars[(CID, names.VAR_CALLERID_RAW_NUM)] = "+4599"
    shown = {"CHANNEL(linkedid)": CID, "CALLERID(dnid)": "4570000000"}
    await h.send(CID, stasis_start(CID, channelvars=shown))
    await h.play_through(CID)
    await h.play_through(CID)
    await h.digit(CID, "1")

    asked = {c[2] for c in h.ari.of("get_variable")}
    assert asked == {names.VAR_CALLERID_RAW_NUM, names.VAR_CALLERID_RAW_NAME}
    (entry,) = h.ledger()
    assert caller_of(entry, h.ledger_path).number == "+4599"
