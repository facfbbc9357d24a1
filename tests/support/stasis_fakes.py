"""Fakes and a small harness for driving :class:`callconsent.stasis.StasisApp` without Asterisk.

``FakeAri`` records every ARI call the adapter makes and raises chosen errors; ``Harness`` wires
a real :class:`~callconsent.app.ConfigPlanner` over a copy of ``config/demo.yaml`` (paths moved
to ``tmp_path``, tiny prompt files on disk) and the real :class:`~callconsent.store.EvidenceStore`,
and offers ARI event builders shaped like Asterisk's.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from callconsent import names
from callconsent.agents.evidence import AgentEvidence
from callconsent.app import ConfigPlanner
from callconsent.ari import AriError, AriNotFound
from callconsent.config import Config, load_config
from callconsent.consent import CallPlan
from callconsent.ports import Objections
from callconsent.stasis import Planner, Skip, StasisApp
from callconsent.store import EvidenceStore
from tests.support.lab import DEMO_CONFIG, LAB_ENV

#: Every audio base name the demo config refers to, per language.
PROMPT_AUDIO = (
    "lab-docs-v1",
    "lab-training-v1",
    "lab-training-v1-question",
    "lab-training-v1-explicit",
    "lab-training-v1-retry",
    "lab-language-menu",
)


# -- the fake ARI -------------------------------------------------------------------------


@dataclass
class FakeAri:
    """An :class:`callconsent.stasis.AriOps` that records calls and fails on request.

    ``fail[method]`` is an exception raised by calls of that method (``answer``, ``play``,
    ...): by every call, or by the next ``fail_times[method]`` calls only. ``gone`` holds
    channel ids for which every channel operation answers 404. ``channel_vars`` holds what
    ``get_variable`` answers, by ``(channel_id, name)``.
    """

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    fail: dict[str, Exception] = field(default_factory=dict)
    fail_times: dict[str, int] = field(default_factory=dict)
    channel_vars: dict[tuple[str, str], str] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    in_stasis: list[str] = field(default_factory=list)
    linkedids: dict[str, str] = field(default_factory=dict)
    dnid: str = "4570000000"

    def _record(self, method: str, *args: Any, channel_id: str | None = None) -> None:
        self.calls.append((method, *args))
        if method in self.fail:
            left = self.fail_times.get(method)
            if left is None:
                raise self.fail[method]
            if left > 0:
                self.fail_times[method] = left - 1
                raise self.fail[method]
        if channel_id is not None and channel_id in self.gone:
            raise AriNotFound(404, "POST", f"/channels/{channel_id}", "Channel not found")

    async def answer(self, channel_id: str) -> None:
        self._record("answer", channel_id, channel_id=channel_id)

    async def play(
        self, channel_id: str, media: str | list[str], playback_id: str, lang: str | None = None
    ) -> Any:
        self._record("play", channel_id, media, playback_id, lang, channel_id=channel_id)
        return {"id": playback_id, "state": "queued"}

    async def stop_playback(self, playback_id: str) -> None:
        self._record("stop_playback", playback_id)

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        self._record("set_variable", channel_id, name, value, channel_id=channel_id)

    async def set_variables(self, channel_id: str, pairs: Sequence[tuple[str, str]]) -> None:
        """One request: it fails whole (``fail["set_variables"]``), else each pair is listed
        as a ``set_variable`` (what :meth:`variables` reads)."""
        self._record("set_variables", channel_id, tuple(pairs), channel_id=channel_id)
        for name, value in pairs:
            self.calls.append(("set_variable", channel_id, name, value))

    async def get_variable(self, channel_id: str, name: str) -> str:
        self._record("get_variable", channel_id, name, channel_id=channel_id)
        if (channel_id, name) in self.channel_vars:
            return self.channel_vars[(channel_id, name)]
        if name == "CHANNEL(linkedid)":
            return self.linkedids.get(channel_id, channel_id)
        if name == "CALLERID(dnid)":
            return self.dnid
        raise AriNotFound(404, "GET", f"/channels/{channel_id}/variable", "Variable not found")

    async def continue_in_dialplan(self, channel_id: str) -> None:
        self._record("continue_in_dialplan", channel_id, channel_id=channel_id)

    async def subscribe(self, event_source: str) -> None:
        self._record("subscribe", event_source)

    async def unsubscribe(self, event_source: str) -> None:
        self._record("unsubscribe", event_source)

    async def filter_events(
        self, disallowed: Sequence[str] = (), *, allowed: Sequence[str] = ()
    ) -> None:
        self._record("filter_events", tuple(disallowed), tuple(allowed))

    async def application_channel_ids(self) -> list[str]:
        self._record("application_channel_ids")
        return list(self.in_stasis)

    async def get_channel(self, channel_id: str) -> dict[str, Any]:
        self._record("get_channel", channel_id, channel_id=channel_id)
        return {"id": channel_id}

    # -- what happened to one channel ---------------------------------------------------
    def of(self, method: str, channel_id: str | None = None) -> list[tuple[Any, ...]]:
        return [
            c for c in self.calls if c[0] == method and (channel_id is None or c[1] == channel_id)
        ]

    def variables(self, channel_id: str) -> list[tuple[str, str]]:
        """``(name, value)`` of every set_variable on the channel, in order."""
        return [(c[2], c[3]) for c in self.of("set_variable", channel_id)]

    def result(self, channel_id: str) -> dict[str, str]:
        return dict(self.variables(channel_id))

    def continues(self, channel_id: str) -> int:
        return len(self.of("continue_in_dialplan", channel_id))

    def plays(self, channel_id: str) -> list[tuple[str, str]]:
        """``(media, playback_id)`` of every play on the channel, in order."""
        return [(c[2], c[3]) for c in self.of("play", channel_id)]


def ari_error(method: str = "POST", path: str = "/channels/x/answer") -> AriError:
    return AriError(500, method, path, "Internal Server Error")


# -- ARI events, shaped like Asterisk's ---------------------------------------------------

_TICK = itertools.count()


def _timestamp() -> str:
    # Asterisk's form: local time with a numeric offset and no colon
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def stasis_start(
    channel_id: str,
    route: str | None = "support",
    *,
    number: str | None = "4512345678",
    name: str | None = "Alice",
    channelvars: dict[str, str] | None = None,
    state: str = "Ring",
) -> dict[str, Any]:
    """``channelvars``: what ari.conf ``channelvars`` shows in the channel (None: not set);
    ``state``: "Up" when a dialplan answered before Stasis (the shipped hook does)."""
    caller: dict[str, Any] = {}
    if number is not None:
        caller["number"] = number
    if name is not None:
        caller["name"] = name
    event = {
        "type": "StasisStart",
        "timestamp": _timestamp(),
        "application": names.APP_NAME,
        "args": [] if route is None else [route],
        "channel": {
            "id": channel_id,
            "name": f"PJSIP/trunk-{next(_TICK):08x}",
            "state": state,
            "caller": caller,
            "connected": {"name": "", "number": ""},
            "dialplan": {"context": names.HOOK_CONTEXT, "exten": names.HOOK_EXTEN, "priority": 5},
            "language": "da",
        },
    }
    if channelvars is not None:
        event["channel"]["channelvars"] = dict(channelvars)
    return event


def playback_event(
    kind: str, channel_id: str, playback_id: str, state: str, timestamp: str | None = None
) -> dict[str, Any]:
    return {
        "type": kind,
        "timestamp": timestamp or _timestamp(),
        "application": names.APP_NAME,
        "playback": {
            "id": playback_id,
            "media_uri": "sound:x",
            "target_uri": f"channel:{channel_id}",
            "language": "da",
            "state": state,
        },
    }


def dtmf(channel_id: str, digit: str) -> dict[str, Any]:
    return {
        "type": "ChannelDtmfReceived",
        "timestamp": _timestamp(),
        "application": names.APP_NAME,
        "digit": digit,
        "duration_ms": 120,
        "channel": {"id": channel_id},
    }


def channel_event(kind: str, channel_id: str) -> dict[str, Any]:
    """StasisEnd, ChannelHangupRequest, ChannelDestroyed."""
    event: dict[str, Any] = {
        "type": kind,
        "timestamp": _timestamp(),
        "application": names.APP_NAME,
        "channel": {"id": channel_id, "state": "Up"},
    }
    if kind == "ChannelDestroyed":
        event.update(cause=16, cause_txt="Normal Clearing")
    return event


# -- WAV files as MixMonitor leaves them ----------------------------------------------------


def pcm_wav(frames: int, rate: int = 8000) -> bytes:
    """A closed 16-bit mono PCM WAV holding ``frames`` samples (0 frames: header only)."""
    data = b"".join(struct.pack("<h", (i * 97) % 2000 - 1000) for i in range(frames))
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(data),
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        rate,
        rate * 2,
        2,
        16,
        b"data",
        len(data),
    )
    return header + data


def write_audio(path: Path, data: bytes) -> None:
    """What MixMonitor leaves when it closes the file (sync: tests call it from async code)."""
    path.write_bytes(data)


def is_file(path: Path) -> bool:
    return path.is_file()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# -- schemas (read from the package, independently of the code under test) -----------------


@cache
def _schemas() -> tuple[Registry[Any], dict[str, str]]:
    registry: Registry[Any] = Registry()
    ids: dict[str, str] = {}
    folder = resources.files("callconsent").joinpath("schemas")
    for name in ("sidecar.schema.json", "ledger-entry.schema.json"):
        contents = json.loads(folder.joinpath(name).read_text(encoding="utf-8"))
        registry = registry.with_resource(contents["$id"], Resource.from_contents(contents))
        ids[name] = contents["$id"]
    return registry, ids


def schema_problems(name: str, doc: Any) -> list[str]:
    registry, ids = _schemas()
    validator = Draft202012Validator({"$ref": ids[name]}, registry=registry)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]


# -- config and wiring ----------------------------------------------------------------------


def write_prompts(prompts_dir: Path, languages: tuple[str, ...] = ("da", "en")) -> None:
    for lang in languages:
        folder = prompts_dir / lang
        folder.mkdir(parents=True, exist_ok=True)
        for audio in PROMPT_AUDIO:
            (folder / f"{audio}.wav").write_bytes(pcm_wav(16) + audio.encode())


def load_demo(tmp_path: Path, change: Callable[[dict[str, Any]], None] | None = None) -> Config:
    """``config/demo.yaml`` with every path under ``tmp_path``."""
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8")))
    data["storage"] = {
        "recordings_dir": str(tmp_path / "recordings"),
        "ledger_path": str(tmp_path / "state" / "ledger.jsonl"),
        "notice_archive_dir": str(tmp_path / "state" / "notices"),
    }
    data["prompts_dir"] = str(tmp_path / "prompts")
    data["agent_consent"] = {"registry_path": str(tmp_path / "state" / "agents.json")}
    if change is not None:
        change(data)
    path = tmp_path / "callconsent.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path, env=LAB_ENV)


class ShortTimeouts:
    """A planner giving every consent question a short timeout (the config allows >= 1 s)."""

    def __init__(self, inner: Planner, seconds: float) -> None:
        self._inner = inner
        self._seconds = seconds

    def plan(self, route_arg: str | None, dialled: str | None) -> CallPlan | Skip:
        plan = self._inner.plan(route_arg, dialled)
        if isinstance(plan, Skip):
            return plan
        purposes = tuple(
            replace(p, consent=replace(p.consent, timeout_seconds=self._seconds))
            if p.consent is not None
            else p
            for p in plan.purposes
        )
        return replace(plan, purposes=purposes)


async def eventually(predicate: Callable[[], bool], within: float = 2.0) -> None:
    async with asyncio.timeout(within):
        for _ in itertools.count():
            if predicate():
                return
            await asyncio.sleep(0.01)


class Harness:
    """One StasisApp over FakeAri, the demo config's planner and a real evidence store."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        config: Config | None = None,
        timeout: float | None = None,
        clock: Callable[[], datetime] | None = None,
        prompts: bool = True,
        ami_ends: Callable[[], bool] | None = None,
        heard_key: Callable[[], None] | None = None,
        objections: Objections | None = None,
    ) -> None:
        """``ami_ends``: whether AMI reports a recorded call's end (StasisApp's own default:
        never); ``heard_key``: told of every key ARI reports; ``objections``: the objection
        adapter late keys go to."""
        self.tmp_path = tmp_path
        if prompts:
            write_prompts(tmp_path / "prompts")
        self.config = config or load_demo(tmp_path)
        self.recordings = self.config.storage.recordings_dir
        self.ledger_path = self.config.storage.ledger_path
        self.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        self.recordings.mkdir(parents=True, exist_ok=True)
        self.ari = FakeAri()
        planner: Planner = ConfigPlanner(self.config, rng=lambda: 0.0)
        if timeout is not None:
            planner = ShortTimeouts(planner, timeout)
        store_clock = clock or (lambda: datetime.now(UTC))
        self.store = EvidenceStore(
            recordings_dir=self.recordings,
            ledger_path=self.ledger_path,
            config_sha256=self.config.sha256,
            clock=store_clock,
        )
        options: dict[str, Any] = {"objections": objections}
        if clock is not None:
            options["clock"] = clock
        if ami_ends is not None:
            options["ami_ends"] = ami_ends
        if heard_key is not None:
            options["heard_key"] = heard_key
        self.app = StasisApp(self.ari, planner, self.store, **options)
        self._items_ended: dict[str, int] = {}  # playback id -> its items played so far

    # -- events -----------------------------------------------------------------------------
    async def send(self, channel_id: str, event: dict[str, Any]) -> None:
        await self.app.on_channel_event(channel_id, event)

    async def start(self, channel_id: str, route: str | None = "support", **caller: Any) -> None:
        await self.send(channel_id, stasis_start(channel_id, route, **caller))

    def last_playback(self, channel_id: str) -> str:
        plays = self.ari.plays(channel_id)
        assert plays, f"nothing was played on {channel_id}"
        return plays[-1][1]

    async def play_started(self, channel_id: str, timestamp: str | None = None) -> None:
        pid = self.last_playback(channel_id)
        event = playback_event("PlaybackStarted", channel_id, pid, "playing", timestamp)
        await self.send(channel_id, event)

    async def play_finished(
        self, channel_id: str, timestamp: str | None = None, state: str = "done"
    ) -> None:
        """The last prompt played on the channel ends (``state``); an item of a playlist other
        than its last one goes on to the next, as Asterisk reports it: PlaybackContinuing."""
        media, pid = self.ari.plays(channel_id)[-1]
        items = 1 if isinstance(media, str) else len(media)
        ended = self._items_ended.get(pid, 0) + 1
        self._items_ended[pid] = ended
        kind = "PlaybackFinished"
        if ended < items and state == "done":
            kind, state = "PlaybackContinuing", "continuing"
        await self.send(channel_id, playback_event(kind, channel_id, pid, state, timestamp))

    async def play_through(self, channel_id: str) -> None:
        """The last prompt played on the channel (the next item of a playlist) starts and runs
        to its end."""
        await self.play_started(channel_id)
        await self.play_finished(channel_id)

    async def digit(self, channel_id: str, digit: str) -> None:
        await self.send(channel_id, dtmf(channel_id, digit))

    async def hangup(self, channel_id: str) -> None:
        for kind in ("ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"):
            await self.send(channel_id, channel_event(kind, channel_id))

    async def answer_question(self, channel_id: str, digit: str, route: str = "support") -> None:
        """A whole call on a one-question route: notice, question, ``digit``."""
        await self.start(channel_id, route)
        await self.play_through(channel_id)  # the notice
        await self.play_through(channel_id)  # the question
        await self.digit(channel_id, digit)

    async def agent_consents(self, channel_id: str, agent_id: str = "agent1") -> None:
        """The answering agent consented at the bridge (what the bridge adapter reports)."""
        now = datetime.now(UTC)
        agent = AgentEvidence(agent_id, "given", now, now)
        assert await self.store.agent_decided(channel_id, agent, given=True) is not None

    # -- evidence ---------------------------------------------------------------------------
    def ledger(self) -> list[dict[str, Any]]:
        if not self.ledger_path.exists():
            return []
        lines = self.ledger_path.read_bytes().splitlines()
        return [json.loads(line) for line in lines]

    def calls_in_ledger(self, channel_id: str) -> list[dict[str, Any]]:
        return [
            e for e in self.ledger() if e["type"] == "call" and e["call"]["uniqueid"] == channel_id
        ]

    def sidecars(self) -> list[Path]:
        return sorted(self.recordings.rglob("*.json"))

    def files_outside(self, *allowed: Path) -> list[Path]:
        """Files under tmp_path that are not in the recordings, state or prompts folders."""
        roots = (
            self.recordings,
            self.ledger_path.parent,
            self.tmp_path / "prompts",
            self.config.path,
            *allowed,
        )
        return [
            p
            for p in self.tmp_path.rglob("*")
            if p.is_file() and not any(p == r or p.is_relative_to(r) for r in roots)
        ]
