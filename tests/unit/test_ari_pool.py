"""The ARI REST connection pool: keep-alive reuse, a bounded number of connections, idle
connections retired before Asterisk's keep-alive ends, no retry of a request that may have
reached Asterisk, and no reuse of a connection whose state is unknown (garbage, stall, close)."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvloop

from callconsent.ari import AriClient, AriError
from callconsent.ari._http import build_request
from callconsent.ari._pool import HttpPool, HttpTransportError
from tests.support import FakeAriServer
from tests.support.raw_http import CLOSE, NO_CONTENT, OK, STALL, Answer, RawHttpServer
from tests.support.tls import self_signed_cert

PASSWORD = "s3cr3t-Pa55"
GET = build_request("GET", "/ari/asterisk/info", "127.0.0.1")


@pytest.fixture
async def fake() -> AsyncIterator[FakeAriServer]:
    async with FakeAriServer(password=PASSWORD) as server:
        yield server


async def test_sequential_requests_share_one_kept_alive_connection() -> None:
    async with RawHttpServer() as server:
        pool = HttpPool("127.0.0.1", server.port)
        for _ in range(5):
            assert (await pool.request(GET)).body == b"{}"
        await pool.close()
    assert server.connections == 1 and len(server.requests) == 5


async def test_concurrent_requests_open_at_most_max_connections_and_all_complete() -> None:
    async with RawHttpServer() as server:
        pool = HttpPool("127.0.0.1", server.port, max_connections=3)
        answers = await asyncio.gather(*(pool.request(GET) for _ in range(30)))
        await pool.close()
    assert [a.status for a in answers] == [200] * 30
    assert server.connections <= 3 and server.most_open <= 3
    assert len(server.requests) == 30


async def test_waiting_requests_are_served_as_connections_free_up() -> None:
    script = {0: STALL}
    async with RawHttpServer(lambda n: script.get(n, Answer())) as server:
        pool = HttpPool("127.0.0.1", server.port, max_connections=1)
        stalled = asyncio.create_task(pool.request(GET))
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(pool.request(GET))
        await asyncio.sleep(0.05)
        assert not waiting.done() and server.connections == 1
        stalled.cancel()  # its connection is closed (state unknown), its slot handed on
        assert (await asyncio.wait_for(waiting, 1)).status == 200
        await pool.close()
    assert server.connections == 2


async def test_a_cancelled_waiter_does_not_lose_the_slot() -> None:
    script = {0: STALL}
    async with RawHttpServer(lambda n: script.get(n, Answer())) as server:
        pool = HttpPool("127.0.0.1", server.port, max_connections=1)
        stalled = asyncio.create_task(pool.request(GET))
        await asyncio.sleep(0.05)
        gave_up = asyncio.create_task(pool.request(GET))
        await asyncio.sleep(0.01)
        gave_up.cancel()
        stalled.cancel()
        await asyncio.gather(stalled, gave_up, return_exceptions=True)
        assert pool.open_connections == 0
        assert (await asyncio.wait_for(pool.request(GET), 1)).status == 200
        await pool.close()


async def test_a_connection_idle_longer_than_the_limit_is_not_reused() -> None:
    async with RawHttpServer() as server:
        pool = HttpPool("127.0.0.1", server.port, idle_limit=0.05)
        await pool.request(GET)
        await pool.request(GET)
        assert server.connections == 1
        await asyncio.sleep(0.1)
        await pool.request(GET)
        await pool.close()
    assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async with RawHttpServer(lambda n: Answer(NO_CONTENT, close=n == 0)) as server:
        pool = HttpPool("127.0.0.1", server.port)
        await pool.request(GET)
        await asyncio.sleep(0.05)  # the FIN arrives
        assert (await pool.request(GET)).status == 204
        await pool.close()
    assert server.connections == 2 and len(server.requests) == 2


async def test_connection_close_in_the_answer_retires_the_connection() -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    async with RawHttpServer(lambda n: Answer(closing)) as server:
        pool = HttpPool("127.0.0.1", server.port)
        await pool.request(GET)
        await pool.request(GET)  # at once: no waiting for the server's FIN
        await pool.close()
    assert server.connections == 2


async def test_a_request_the_server_dropped_is_not_retried() -> None:
    async with RawHttpServer(lambda n: CLOSE) as server:
        pool = HttpPool("127.0.0.1", server.port)
        with pytest.raises(HttpTransportError, match="before any answer"):
            await pool.request(GET)
        await pool.close()
    assert len(server.requests) == 1


async def test_an_answer_cut_short_fails_and_is_not_retried() -> None:
    cut = Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", close=True)
    async with RawHttpServer(lambda n: cut) as server:
        pool = HttpPool("127.0.0.1", server.port)
        with pytest.raises(HttpTransportError, match="during the answer"):
            await pool.request(GET)
        await pool.close()
    assert len(server.requests) == 1


async def test_garbage_fails_the_request_and_the_connection_is_dropped() -> None:
    script = {0: Answer(b"SSH-2.0-OpenSSH\r\n\r\n")}
    async with RawHttpServer(lambda n: script.get(n, Answer())) as server:
        pool = HttpPool("127.0.0.1", server.port)
        with pytest.raises(HttpTransportError, match="malformed status line"):
            await pool.request(GET)
        assert (await pool.request(GET)).status == 200
        await pool.close()
    assert server.connections == 2


async def test_data_the_server_sends_unasked_drops_the_idle_connection() -> None:
    async with RawHttpServer() as server:
        pool = HttpPool("127.0.0.1", server.port)
        await pool.request(GET)
        server.push(OK)
        await asyncio.sleep(0.05)
        assert (await pool.request(GET)).body == b"{}"
        await pool.close()
    assert server.connections == 2


async def test_a_stalled_request_times_out_and_its_late_answer_is_never_read() -> None:
    late = Answer(b'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"stale"')
    answers: dict[int, Answer] = {0: STALL}
    async with RawHttpServer(lambda n: answers.get(n, late)) as server:
        ari = AriClient(f"http://127.0.0.1:{server.port}", "u", "p", "app", request_timeout=0.1)
        with pytest.raises(AriError, match=r"no answer within 0\.1 s") as caught:
            await ari.asterisk_info()
        assert caught.value.status is None
        server.push(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")  # the stalled answer
        answers[1] = Answer(b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"fresh":1}')
        assert await ari.asterisk_info() == {"fresh": 1}
        await ari.close()
    assert server.connections == 2


async def test_transport_errors_never_carry_the_credentials() -> None:
    token = base64.b64encode(f"asterisk:{PASSWORD}".encode()).decode()

    def echo(n: int) -> Answer:
        return Answer(server.requests[n], close=True)  # the request itself as the "answer"

    async with RawHttpServer(echo) as server:
        ari = AriClient(f"http://127.0.0.1:{server.port}", "asterisk", PASSWORD, "app")
        with pytest.raises(AriError) as caught:
            await ari.asterisk_info()
        await ari.close()
    text = f"{caught.value!s} {caught.value!r} {caught.value.detail}"
    assert token in server.requests[0].decode()
    assert token not in text and PASSWORD not in text
    assert "malformed status line" in text


async def test_the_ari_client_keeps_one_connection_for_many_calls(fake: FakeAriServer) -> None:
    fake.add_channel("c1")
    ari = AriClient(fake.base_url, "asterisk", PASSWORD, "callconsent")
    for n in range(10):
        await ari.set_variable("c1", "N", str(n))
    await ari.close()
    assert fake.channels["c1"]["N"] == "9"
    assert ari._pool.opened == 1


async def test_the_ari_client_sends_through_an_http_conf_prefix() -> None:
    async with RawHttpServer() as server:
        base = f"http://127.0.0.1:{server.port}/asterisk/ari"
        ari = AriClient(base, "u", "p", "app")
        await ari.asterisk_info()
        await ari.close()
    assert server.requests[0].startswith(b"GET /asterisk/ari/asterisk/info HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{server.port}\r\n".encode() in server.requests[0]


@pytest.mark.parametrize(
    "url", ["http://u:p@127.0.0.1:8088", "http://127.0.0.1:8088/?x=1", "http:///ari"]
)
def test_base_urls_it_cannot_use_as_given_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        AriClient(url, "u", "p", "app")


def test_the_pool_works_on_uvloop_as_serve_runs_it() -> None:
    async def run() -> tuple[int, int]:
        async with RawHttpServer() as server:
            pool = HttpPool("127.0.0.1", server.port)
            answers = await asyncio.gather(*(pool.request(GET) for _ in range(20)))
            await pool.close()
        return sum(a.status == 200 for a in answers), server.connections

    done, connections = uvloop.run(run())
    assert done == 20 and 1 <= connections <= 20


def _server_tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    cert, key = self_signed_cert(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert


async def test_https_goes_through_tls_with_keep_alive(tmp_path: Path) -> None:
    server_tls, cert = _server_tls(tmp_path)
    async with RawHttpServer(tls=server_tls) as server:
        trusting = ssl.create_default_context(cafile=str(cert))
        pool = HttpPool("127.0.0.1", server.port, ssl=trusting)
        assert (await pool.request(GET)).body == b"{}"
        assert (await pool.request(GET)).body == b"{}"
        await pool.close()
    assert server.connections == 1 and len(server.requests) == 2


async def test_https_refuses_a_certificate_it_cannot_verify(tmp_path: Path) -> None:
    server_tls, _ = _server_tls(tmp_path)
    async with RawHttpServer(tls=server_tls) as server:
        ari = AriClient(f"https://127.0.0.1:{server.port}", "asterisk", PASSWORD, "app")
        with pytest.raises(AriError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            await ari.asterisk_info()
        await ari.close()
    assert caught.value.status is None and PASSWORD not in str(caught.value)
    assert server.requests == []
