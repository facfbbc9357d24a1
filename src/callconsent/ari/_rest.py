"""ARI REST calls: one small method per call, one domain error (:class:`AriError`)."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from callconsent.dialplan_args import array_assignment

from ._errors import AriError, AriNotFound
from ._http import build_request
from ._pool import DEFAULT_MAX_CONNECTIONS, HttpPool, HttpTransportError

#: Longest part of an error answer kept in ``AriError.detail``.
_DETAIL_MAX = 300


def encode_path(*segments: str) -> str:
    """``/ari/<seg>/<seg>...`` with every segment percent-encoded (``/`` too)."""
    return "/ari/" + "/".join(quote(segment, safe="") for segment in segments)


def encode_query(params: Sequence[tuple[str, str]]) -> str:
    """A query string with every name and value percent-encoded (no ``+`` for spaces)."""
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in params)


def describe(exc: BaseException) -> str:
    """A one-line description of a transport error; never a repr (those can carry headers)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _detail(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])[:_DETAIL_MAX]
    return body.decode("utf-8", "replace").strip()[:_DETAIL_MAX]


class AriRest:
    """The REST half of :class:`AriClient` (see there for the constructor arguments)."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        app: str,
        *,
        session: aiohttp.ClientSession | None = None,
        request_timeout: float = 5.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        base = base_url.rstrip("/")
        base = base.removesuffix("/ari")
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"ARI base_url must start with http:// or https://: {base_url!r}")
        if request_timeout <= 0:
            raise ValueError("request_timeout must be > 0")
        parts = urlsplit(base)
        if parts.username is not None or parts.password is not None:
            raise ValueError("ARI base_url must not carry credentials (pass username, password)")
        if parts.query or parts.fragment or not parts.hostname:
            raise ValueError(f"ARI base_url must be scheme://host[:port][/prefix]: {base_url!r}")
        https = parts.scheme == "https"
        self._base = base
        self._prefix = parts.path  # Asterisk's http.conf ``prefix``, if any ("" otherwise)
        self._host_header = parts.netloc
        self._username = username
        self.app = app
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        # Only the header is kept, never the password itself.
        self.__headers = {"Authorization": f"Basic {token}"}
        self.__request_headers: tuple[tuple[str, str], ...] = (("Authorization", f"Basic {token}"),)
        self._given_session = session
        self._own_session: aiohttp.ClientSession | None = None
        self._request_timeout = request_timeout
        # REST goes through our own keep-alive pool (the events websocket stays on aiohttp);
        # https through asyncio's TLS transport, the certificate checked as aiohttp does.
        self._pool = HttpPool(
            parts.hostname,
            parts.port or (443 if https else 80),
            ssl=ssl.create_default_context() if https else None,
            max_connections=max_connections,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._base!r}, username={self._username!r}, "
            f"app={self.app!r})"
        )

    @property
    def base_url(self) -> str:
        return self._base

    def _auth_headers(self) -> dict[str, str]:
        return dict(self.__headers)

    def _session(self) -> aiohttp.ClientSession:
        if self._given_session is not None:
            return self._given_session
        if self._own_session is None or self._own_session.closed:
            self._own_session = aiohttp.ClientSession()
        return self._own_session

    async def close(self) -> None:
        """Close the REST connections and the HTTP session the client created (a session
        passed in is left open)."""
        await self._pool.close()
        if self._own_session is not None:
            await self._own_session.close()
            self._own_session = None

    async def _request(
        self,
        method: str,
        segments: Sequence[str],
        params: Sequence[tuple[str, str]] = (),
        body: Any = None,
    ) -> Any:
        """Send one request (``body``: a JSON body); the decoded JSON answer, or ``None``."""
        path = encode_path(*segments)
        query = encode_query(params)
        target = f"{self._prefix}{path}?{query}" if query else f"{self._prefix}{path}"
        headers: tuple[tuple[str, str], ...] = self.__request_headers
        if body is not None:
            headers = (*headers, ("Content-Type", "application/json"))
        data = None if body is None else json.dumps(body).encode()
        request = build_request(method, target, self._host_header, headers, data)
        try:
            async with asyncio.timeout(self._request_timeout):
                response = await self._pool.request(request)
        except TimeoutError:
            detail = f"no answer within {self._request_timeout:g} s"
            raise AriError(None, method, path, detail) from None
        except (HttpTransportError, OSError) as exc:
            raise AriError(None, method, path, describe(exc)) from None
        status, body = response.status, response.body
        if status == 404:
            raise AriNotFound(status, method, path, _detail(body))
        if not 200 <= status < 300:
            raise AriError(status, method, path, _detail(body))
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError:
            raise AriError(status, method, path, "answer is not valid JSON") from None

    async def _request_dict(
        self, method: str, segments: Sequence[str], params: Sequence[tuple[str, str]] = ()
    ) -> dict[str, Any]:
        data = await self._request(method, segments, params)
        if not isinstance(data, dict):
            raise AriError(None, method, encode_path(*segments), "expected a JSON object")
        return data

    # --- channels -------------------------------------------------------------------------

    async def answer(self, channel_id: str) -> None:
        await self._request("POST", ("channels", channel_id, "answer"))

    async def play(
        self,
        channel_id: str,
        media: str | list[str],
        playback_id: str,
        lang: str | None = None,
    ) -> dict[str, Any]:
        """Start playing ``media`` (one URI or several, in order); returns the Playback object.

        Several URIs travel comma-separated (ARI's form), so a URI may not contain a comma.
        """
        uris = [media] if isinstance(media, str) else list(media)
        if not uris or any(not uri or "," in uri for uri in uris):
            raise ValueError(f"media URIs must be non-empty and free of commas: {uris!r}")
        params = [("media", ",".join(uris))]
        if lang is not None:
            params.append(("lang", lang))
        return await self._request_dict(
            "POST", ("channels", channel_id, "play", playback_id), params
        )

    async def stop_playback(self, playback_id: str) -> None:
        await self._request("DELETE", ("playbacks", playback_id))

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        params = [("variable", name), ("value", value)]
        await self._request("POST", ("channels", channel_id, "variable"), params)

    async def set_variables(self, channel_id: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Set several variables in one request (one ``ARRAY()`` write), in order; all or
        none of them are set."""
        if len(pairs) == 1:
            await self.set_variable(channel_id, *pairs[0])
            return
        await self.set_variable(channel_id, *array_assignment(pairs))

    async def get_variable(self, channel_id: str, name: str) -> str:
        """The variable's value. A variable that is not set raises :class:`AriNotFound`."""
        segments = ("channels", channel_id, "variable")
        data = await self._request_dict("GET", segments, [("variable", name)])
        value = data.get("value")
        if not isinstance(value, str):
            raise AriError(None, "GET", encode_path(*segments), "answer has no string 'value'")
        return value

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        """Leave Stasis; fields left ``None`` are not sent (Asterisk continues where it was)."""
        params: list[tuple[str, str]] = []
        for name, value in (
            ("context", context),
            ("extension", extension),
            ("priority", None if priority is None else str(priority)),
            ("label", label),
        ):
            if value is not None:
                params.append((name, value))
        await self._request("POST", ("channels", channel_id, "continue"), params)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self._request("DELETE", ("channels", channel_id), [("reason", reason)])

    async def get_channel(self, channel_id: str) -> dict[str, Any]:
        return await self._request_dict("GET", ("channels", channel_id))

    # --- application, asterisk -------------------------------------------------------------

    async def subscribe(self, event_source: str) -> None:
        """Subscribe the app to ``event_source``, e.g. ``"channel:<id>"``."""
        params = [("eventSource", event_source)]
        await self._request("POST", ("applications", self.app, "subscription"), params)

    async def unsubscribe(self, event_source: str) -> None:
        params = [("eventSource", event_source)]
        await self._request("DELETE", ("applications", self.app, "subscription"), params)

    async def filter_events(
        self, disallowed: Sequence[str] = (), *, allowed: Sequence[str] = ()
    ) -> None:
        """Have Asterisk send the app only events of the ``allowed`` types (none given: of
        every type) and none of the ``disallowed`` ones."""
        body: dict[str, list[dict[str, str]]] = {}
        if allowed:
            body["allowed"] = [{"type": kind} for kind in allowed]
        if disallowed:
            body["disallowed"] = [{"type": kind} for kind in disallowed]
        await self._request("PUT", ("applications", self.app, "eventFilter"), body=body)

    async def application_channel_ids(self) -> list[str]:
        """Ids of the channels currently in (or subscribed by) the app: ``channel_ids``."""
        segments = ("applications", self.app)
        data = await self._request_dict("GET", segments)
        ids = data.get("channel_ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise AriError(None, "GET", encode_path(*segments), "answer has no 'channel_ids' list")
        return list(ids)

    async def asterisk_info(self) -> dict[str, Any]:
        return await self._request_dict("GET", ("asterisk", "info"))
