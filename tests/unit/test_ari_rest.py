"""ARI REST helpers against the fake ARI server: encoding, auth, errors, timeouts."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callconsent.ari import AriClient, AriError, AriNotFound
from callconsent.ari._rest import encode_path, encode_query

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `tests.support` without a conftest
from tests.support import FakeAriServer

PASSWORD = "s3cr3t-Pa55"
NASTY = [
    "a/b",
    "a b",
    "?x=1&y=2#frag",
    "100%",
    "plus+sign",
    "semi;colon,comma",
    "..",
    "uniçødé-æøå-☎",
    "PJSIP/1000-0000000a",
    "quote'\"<>\\",
    "new\nline\ttab",
]


@pytest.fixture
async def server() -> AsyncIterator[FakeAriServer]:
    async with FakeAriServer(password=PASSWORD) as fake:
        yield fake


@pytest.fixture
async def client(server: FakeAriServer) -> AsyncIterator[AriClient]:
    ari = AriClient(server.base_url, "asterisk", PASSWORD, "callconsent", request_timeout=1.0)
    yield ari
    await ari.close()


async def test_sends_basic_authorization_header(server: FakeAriServer, client: AriClient) -> None:
    info = await client.asterisk_info()
    assert info["system"]["version"] == "22.10.1"
    assert server.unauthorized == 0


async def test_wrong_password_raises_ari_error_with_401(server: FakeAriServer) -> None:
    ari = AriClient(server.base_url, "asterisk", "wrong", "callconsent")
    try:
        with pytest.raises(AriError) as caught:
            await ari.asterisk_info()
    finally:
        await ari.close()
    assert caught.value.status == 401
    assert not isinstance(caught.value, AriNotFound)
    assert server.unauthorized == 1


async def test_password_not_in_repr(server: FakeAriServer, client: AriClient) -> None:
    assert PASSWORD not in repr(client)
    assert PASSWORD not in str(client)
    assert "asterisk" in repr(client) and server.base_url in repr(client)
    server.fail("GET", ("asterisk", "info"), 500, "boom")
    with pytest.raises(AriError) as caught:
        await client.asterisk_info()
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value)


async def test_channel_id_with_special_characters_is_url_encoded(
    server: FakeAriServer, client: AriClient
) -> None:
    for channel_id in NASTY:
        server.add_channel(channel_id)
        await client.answer(channel_id)
        (call,) = server.calls_to("POST", "channels", channel_id, "answer")
        assert call.raw_path.count("/") == 4  # /ari/channels/<id>/answer: the id is one segment
        assert "?" not in call.raw_path and " " not in call.raw_path


async def test_variable_names_and_values_with_any_characters_round_trip(
    server: FakeAriServer, client: AriClient
) -> None:
    server.add_channel("c1")
    for text in [*NASTY, "", "=", "&", "a=b&c=d", " leading and trailing "]:
        await client.set_variable("c1", f"VAR_{text}", text)
        assert server.channels["c1"][f"VAR_{text}"] == text
        assert await client.get_variable("c1", f"VAR_{text}") == text


@given(st.lists(st.text(), min_size=1, max_size=4))
def test_every_path_segment_survives_encoding(segments: list[str]) -> None:
    path = encode_path(*segments)
    assert "?" not in path and "#" not in path
    assert [unquote(s) for s in path.split("/")[2:]] == segments


@given(st.text(), st.text())
def test_every_query_value_survives_encoding(name: str, value: str) -> None:
    query = encode_query([(name, value), ("next", "x")])
    first, second = query.split("&")
    assert second == "next=x"
    raw_name, raw_value = first.split("=")
    assert (unquote(raw_name), unquote(raw_value)) == (name, value)


async def test_missing_channel_raises_ari_not_found(client: AriClient) -> None:
    with pytest.raises(AriNotFound) as caught:
        await client.answer("gone")
    assert caught.value.status == 404
    assert caught.value.method == "POST"
    assert caught.value.path == "/ari/channels/gone/answer"
    assert caught.value.detail == "Channel not found"


async def test_unset_variable_raises_ari_not_found(
    server: FakeAriServer, client: AriClient
) -> None:
    server.add_channel("c1")
    with pytest.raises(AriNotFound):
        await client.get_variable("c1", "NOPE")


async def test_server_error_raises_ari_error_with_status_and_detail(
    server: FakeAriServer, client: AriClient
) -> None:
    server.add_channel("c1")
    server.fail("POST", ("channels", "c1", "continue"), 500, "Internal Server Error")
    with pytest.raises(AriError) as caught:
        await client.continue_in_dialplan("c1")
    assert type(caught.value) is AriError
    assert (caught.value.status, caught.value.detail) == (500, "Internal Server Error")


async def test_unreachable_server_raises_ari_error_without_status(server: FakeAriServer) -> None:
    await server.stop_listening()
    ari = AriClient(server.base_url, "asterisk", PASSWORD, "callconsent", request_timeout=1.0)
    try:
        with pytest.raises(AriError) as caught:
            await ari.hangup("c1")
    finally:
        await ari.close()
    assert caught.value.status is None
    assert caught.value.method == "DELETE"


async def test_slow_answer_raises_ari_error_after_request_timeout(server: FakeAriServer) -> None:
    server.stall("GET", ("asterisk", "info"), 1.0)
    ari = AriClient(server.base_url, "asterisk", PASSWORD, "callconsent", request_timeout=0.1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(AriError) as caught:
            await ari.asterisk_info()
    finally:
        await ari.close()
    assert caught.value.status is None and "0.1" in caught.value.detail
    assert loop.time() - started < 0.5


async def test_cancelled_request_propagates_cancelled_error(
    server: FakeAriServer, client: AriClient
) -> None:
    server.stall("GET", ("asterisk", "info"), 1.0)
    task = asyncio.create_task(client.asterisk_info())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_play_sends_media_list_and_language(server: FakeAriServer, client: AriClient) -> None:
    server.add_channel("c1")
    playback = await client.play("c1", ["sound:notice", "sound:press-1"], "pb/1", lang="da")
    assert playback["id"] == "pb/1"
    (call,) = server.calls_to("POST", "channels", "c1", "play", "pb/1")
    assert call.query == {"media": "sound:notice,sound:press-1", "lang": "da"}
    await client.play("c1", "sound:notice", "pb2")
    assert server.calls_to("POST", "channels", "c1", "play", "pb2")[0].query == {
        "media": "sound:notice"
    }


@pytest.mark.parametrize("media", [[], [""], ["sound:a,b"]])
async def test_play_rejects_media_that_cannot_be_sent(client: AriClient, media: list[str]) -> None:
    with pytest.raises(ValueError, match="media"):
        await client.play("c1", media, "pb")


async def test_stop_playback_deletes_playback(server: FakeAriServer, client: AriClient) -> None:
    server.add_channel("c1")
    await client.play("c1", "sound:x", "pb1")
    await client.stop_playback("pb1")
    assert server.calls_to("DELETE", "playbacks", "pb1")
    with pytest.raises(AriNotFound):
        await client.stop_playback("pb1")


async def test_continue_in_dialplan_sends_only_given_fields(
    server: FakeAriServer, client: AriClient
) -> None:
    server.add_channel("c1")
    await client.continue_in_dialplan("c1")
    await client.continue_in_dialplan("c1", context="ctx", extension="s", priority=2)
    await client.continue_in_dialplan("c1", label="after consent")
    queries = [c.query for c in server.calls_to("POST", "channels", "c1", "continue")]
    assert queries == [
        {},
        {"context": "ctx", "extension": "s", "priority": "2"},
        {"label": "after consent"},
    ]


async def test_hangup_sends_reason(server: FakeAriServer, client: AriClient) -> None:
    server.add_channel("c1")
    server.add_channel("c2")
    await client.hangup("c1")
    await client.hangup("c2", reason="busy")
    assert server.calls_to("DELETE", "channels", "c1")[0].query == {"reason": "normal"}
    assert server.calls_to("DELETE", "channels", "c2")[0].query == {"reason": "busy"}


async def test_subscribe_and_unsubscribe_send_event_source(
    server: FakeAriServer, client: AriClient
) -> None:
    await client.subscribe("channel:a/b c")
    await client.unsubscribe("channel:a/b c")
    calls = server.calls_to("POST", "applications", "callconsent", "subscription")
    calls += server.calls_to("DELETE", "applications", "callconsent", "subscription")
    assert [c.query for c in calls] == [{"eventSource": "channel:a/b c"}] * 2


async def test_application_channel_ids_returns_what_asterisk_reports(
    server: FakeAriServer, client: AriClient
) -> None:
    server.app_channel_ids = ["c1", "c/2"]
    assert await client.application_channel_ids() == ["c1", "c/2"]


async def test_get_channel_returns_the_channel_object(
    server: FakeAriServer, client: AriClient
) -> None:
    server.add_channel("c1")
    assert (await client.get_channel("c1"))["id"] == "c1"


async def test_given_session_is_used_and_left_open(server: FakeAriServer) -> None:
    async with aiohttp.ClientSession() as session:
        ari = AriClient(server.base_url + "/ari/", "asterisk", PASSWORD, "cc", session=session)
        server.app = "cc"
        assert await ari.application_channel_ids() == []
        await ari.close()
        assert not session.closed


def test_rejects_base_url_without_http_scheme() -> None:
    with pytest.raises(ValueError, match="http"):
        AriClient("127.0.0.1:8088", "u", "p", "app")
