"""The hardened FastAGI server (issue 17) over real sockets on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from structlog.testing import capture_logs

from callconsent.agi.server import AgiServer, AgiSession
from callconsent.agi.wire import AgiGone, AgiHungUp, AgiProtocolError
from tests.support.agi_fakes import HEADER, fake_asterisk
from tests.support.stasis_fakes import eventually

Handler = Callable[[AgiSession], Awaitable[None]]


class Recorder:
    def __init__(self, body: Handler | None = None) -> None:
        self.sessions: list[AgiSession] = []
        self.errors: list[BaseException] = []
        self._body = body

    async def __call__(self, session: AgiSession) -> None:
        self.sessions.append(session)
        if self._body is not None:
            try:
                await self._body(session)
            except (AgiHungUp, TimeoutError, ValueError) as exc:
                self.errors.append(exc)


@pytest.fixture
async def started() -> AsyncIterator[Callable[..., Awaitable[AgiServer]]]:
    servers: list[AgiServer] = []

    async def start(handler: Handler, **options: object) -> AgiServer:
        allow = options.pop("allow", ("127.0.0.1/32",))
        server = AgiServer(handler, bind="127.0.0.1", port=0, allow=allow, **options)  # type: ignore[arg-type]
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close(grace=1.0)


async def _closed_by_server(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        async with asyncio.timeout(3):
            return await reader.read()
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def test_client_outside_the_allowlist_is_refused_before_its_header(started) -> None:  # type: ignore[no-untyped-def]
    handler = Recorder()
    server = await started(handler, allow=("10.0.0.0/8",))
    assert await _closed_by_server(server.port, b"agi_network: yes\n") == b""
    assert server.refused == 1 and handler.sessions == []


async def test_half_headers_that_disconnect_cost_nothing_afterwards(started) -> None:  # type: ignore[no-untyped-def]
    handler = Recorder()
    server = await started(handler)
    for _ in range(200):
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"agi_network: yes\nagi_network_script: callcon")
        await writer.drain()
        writer.close()
    await eventually(lambda: server.dropped == 200, within=5)
    assert handler.sessions == [] and server.connections == 0
    cpu = time.process_time()
    await asyncio.sleep(0.5)
    assert time.process_time() - cpu < 0.1, "the loop is idle once the clients are gone"


async def test_a_silent_client_is_dropped_at_the_header_time_limit(started) -> None:  # type: ignore[no-untyped-def]
    handler = Recorder()
    server = await started(handler, header_timeout=0.2)
    began = time.monotonic()
    assert await _closed_by_server(server.port, b"agi_network: yes\n") == b""
    assert time.monotonic() - began < 2.0 and server.dropped == 1 and handler.sessions == []


async def test_a_header_over_the_size_limit_is_dropped(started) -> None:  # type: ignore[no-untyped-def]
    handler = Recorder()
    server = await started(handler, max_header_bytes=1024)
    flood = b"".join(b"agi_arg_%d: %s\n" % (i, b"x" * 100) for i in range(20))
    assert await _closed_by_server(server.port, b"agi_network: yes\n" + flood) == b""
    assert server.dropped == 1 and handler.sessions == []


async def test_session_syncs_then_gets_each_reply(started) -> None:  # type: ignore[no-untyped-def]
    replies: list[object] = []

    async def body(session: AgiSession) -> None:
        replies.append(await session.send("ANSWER"))
        replies.append(await session.send("STREAM FILE", "/p/x", ""))

    server = await started(Recorder(body))
    answers = {"ANSWER": ["200 result=0"], 'STREAM FILE "/p/x" ""': ["200 result=0 endpos=9"]}
    got = await fake_asterisk(server.port, HEADER, lambda line: answers[line])
    assert got[1:] == ["ANSWER", 'STREAM FILE "/p/x" ""']
    assert [r.result for r in replies] == [0, 0]  # type: ignore[attr-defined]


async def test_lines_smuggled_into_the_header_are_never_read_as_replies(started) -> None:  # type: ignore[no-untyped-def]
    seen: list[object] = []

    async def body(session: AgiSession) -> None:
        seen.append(await session.send("WAIT FOR DIGIT", "1000"))
        seen.append(session.stray_lines)

    server = await started(Recorder(body))
    at = HEADER.index("agi_callerid: +4511112222")
    header = [*HEADER[: at + 1]]  # caller ID "x\n\n200 result=49" ended the header early
    rest = ["200 result=49", *HEADER[at + 1 :], ""]
    await fake_asterisk(server.port, header, lambda _l: ["200 result=0"], before_sync=rest)
    reply, stray = seen
    assert reply.result == 0  # type: ignore[attr-defined]
    assert stray == len(rest)  # every smuggled line (and the header's real end) was skipped


async def test_hangup_then_511_raises_hung_up(started) -> None:  # type: ignore[no-untyped-def]
    handler = Recorder(lambda s: s.send("CHANNEL STATUS"))  # type: ignore[arg-type,return-value]
    server = await started(handler)
    await fake_asterisk(
        server.port,
        HEADER,
        lambda _l: ["HANGUP", "511 Command Not Permitted on a dead channel or intercept routine"],
    )
    assert isinstance(handler.errors[0], AgiHungUp) and handler.sessions[0].hung_up


async def test_multi_line_520_usage_is_one_reply(started) -> None:  # type: ignore[no-untyped-def]
    got: list[object] = []

    async def body(session: AgiSession) -> None:
        got.append(await session.send("STREAM FILE"))
        got.append(await session.send("ANSWER"))

    server = await started(Recorder(body))
    usage = [
        "520-Invalid command syntax.  Proper usage follows:",
        "Send it.",
        "520 End of proper usage.",
    ]
    await fake_asterisk(
        server.port, HEADER, lambda line: usage if line == "STREAM FILE" else ["200 result=0"]
    )
    assert [r.code for r in got] == [520, 200]  # type: ignore[attr-defined]


async def test_client_gone_mid_command_ends_the_session_at_once(started) -> None:  # type: ignore[no-untyped-def]
    handler = Recorder(lambda s: s.send("WAIT FOR DIGIT", "60000", within=30))  # type: ignore[arg-type,return-value]
    server = await started(handler)
    await fake_asterisk(server.port, HEADER, lambda _l: [], commands=2)
    await eventually(lambda: bool(handler.errors))
    assert isinstance(handler.errors[0], AgiGone) and server.connections == 0


async def test_a_stalled_session_blocks_none_of_fifty_others(started) -> None:  # type: ignore[no-untyped-def]
    done: list[str] = []

    async def body(session: AgiSession) -> None:
        await session.send("ANSWER", within=30)
        done.append(session.request.uniqueid)

    server = await started(Recorder(body))

    def header(n: int) -> list[str]:
        return [f"agi_uniqueid: 1.{n}" if h.startswith("agi_uniqueid") else h for h in HEADER]

    stalled = asyncio.create_task(fake_asterisk(server.port, header(0), lambda _l: []))
    await asyncio.sleep(0.1)
    began = time.monotonic()
    await asyncio.gather(
        *(fake_asterisk(server.port, header(n), lambda _l: ["200 result=0"]) for n in range(1, 51))
    )
    assert len(done) == 50 and "1.0" not in done
    assert time.monotonic() - began < 5.0
    stalled.cancel()


async def test_after_a_garbled_reply_every_command_is_a_protocol_error_not_a_hangup(
    started,  # type: ignore[no-untyped-def]
) -> None:
    raised: list[BaseException] = []

    async def body(session: AgiSession) -> None:
        for _ in range(2):
            try:
                await session.send("ANSWER")
            except (AgiHungUp, AgiProtocolError) as exc:
                raised.append(exc)

    server = await started(Recorder(body))
    await fake_asterisk(server.port, HEADER, lambda _l: ["garbage"])
    await eventually(lambda: len(raised) == 2)
    assert all(isinstance(e, AgiProtocolError) for e in raised)


async def test_a_flood_of_refused_connections_is_logged_once_a_second(started) -> None:  # type: ignore[no-untyped-def]
    server = await started(Recorder(), allow=("10.0.0.0/8",))
    with capture_logs() as logs:
        for _ in range(20):
            await _closed_by_server(server.port, b"x\n")
    refusals = [e for e in logs if e["event"] == "agi_refused"]
    assert server.refused == 20 and len(refusals) == 1
    assert refusals[0]["peer"] == "127.0.0.1"
