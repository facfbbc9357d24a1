"""Small file-system helpers shared by the evidence store: timestamps, atomic JSON, schemas.

Evidence files are written so that a crash or power loss at any moment leaves either the old
file or the new one, never a mix: the new content goes to a temporary file in the same directory
(``.<name>.<random>.tmp``), is flushed and fsynced, renamed over the target, and the directory is
fsynced so the rename itself survives a power loss.

JSON is written with ``ensure_ascii=True``: every byte on disk is 7-bit ASCII. Caller-controlled
text (caller name/number) may contain anything Asterisk passes on, including CR/LF, U+2028 and
lone surrogates; escaped, it round-trips exactly and can never break a line or a UTF-8 decoder.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from json.encoder import encode_basestring_ascii as _quote_ascii  # json's C escaper
from pathlib import Path
from typing import Any, Final, TypeVar, cast

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # ships no types
from referencing import Registry, Resource

#: Files holding personal data: owner read/write, group read (R32: 0640 or stricter).
FILE_MODE: Final = 0o640

#: Permission bits for "others" (world): a recordings folder must grant them nothing to read or
#: write (R32).
_WORLD_READ: Final = 0o004
_WORLD_WRITE: Final = 0o002


def tighten_mode(path: Path, mode: int = FILE_MODE) -> int | None:
    """Take away every permission of ``path`` beyond ``mode`` (a stricter mode stays as it is).
    Returns the old permission bits when it changed them, else None. MixMonitor writes with
    Asterisk's umask (0664 under umask 002): the app corrects that when it finalises."""
    old = stat.S_IMODE(path.stat().st_mode)
    new = old & mode
    if new == old:
        return None
    os.chmod(path, new)
    return old


def folder_exposure(mode: int) -> str | None:
    """Why a folder with permission bits ``mode`` may not hold recordings, or None: readable or
    writable by others (world). Pure."""
    problems = [
        word for bit, word in ((_WORLD_READ, "readable"), (_WORLD_WRITE, "writable")) if mode & bit
    ]
    if not problems:
        return None
    return f"{' and '.join(problems)} by every user on the machine (mode {stat.S_IMODE(mode):04o})"


_INFINITY: Final = float("inf")
_T = TypeVar("_T")
_STAMP_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")

#: Temporary files :func:`atomic_write_json` leaves behind only if the process dies mid-write
#: (JSON targets only: nothing that could be audio ever matches).
TEMP_NAME_RE: Final = re.compile(r"\.[A-Za-z0-9][A-Za-z0-9._-]{0,80}\.json\.[A-Za-z0-9_]+\.tmp")


class MalformedDocument(ValueError):
    """A JSON evidence file that cannot be read as a JSON object. Carries the path."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


# -- timestamps ---------------------------------------------------------------------------


def utc_stamp(dt: datetime) -> str:
    """``2026-11-24T12:00:00.123Z``: UTC, milliseconds (truncated), ``Z``. Naive times are refused."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt!r}: evidence times must carry a time zone")
    u = dt.astimezone(UTC)  # formatted by hand: strftime costs ~4x more (hot path, per call)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}."
        f"{u.microsecond // 1000:03d}Z"
    )


def parse_stamp(s: str) -> datetime:
    """Inverse of :func:`utc_stamp`; accepts exactly that format and returns an aware UTC time."""
    if not _STAMP_RE.fullmatch(s):
        raise ValueError(f"not a UTC millisecond timestamp: {s!r}")
    return datetime.strptime(s[:-1], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


# -- JSON ---------------------------------------------------------------------------------


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """The one JSON encoding of evidence: ASCII only, no NaN/Infinity, no raw newlines in values."""
    if indent is not None:  # json's indented encoder is pure Python: ~2.3x slower than this
        out: list[str] = []
        try:
            _indented(obj, out, "\n", " " * indent)
            return "".join(out)
        except (_NotPlain, RecursionError):
            pass  # json.dumps says what is wrong (NaN, a cycle, a key or value it cannot encode)
    separators = (",", ": ") if indent is not None else (",", ":")
    return json.dumps(obj, ensure_ascii=True, allow_nan=False, indent=indent, separators=separators)


def copy_document(doc: _T) -> _T:
    """A deep copy of a JSON document (dicts, lists and immutable leaves), as ``copy.deepcopy``
    makes it at a third of the cost; any other container is left to ``copy.deepcopy``. Unlike
    it, a sub-document that appears twice is copied twice (as reading the file back gives)."""
    return cast(_T, _copied(doc))


def _copied(doc: Any) -> Any:
    kind = type(doc)
    if kind is dict:
        return {key: _copied(value) for key, value in doc.items()}
    if kind is list:
        return [_copied(value) for value in doc]
    if kind in _IMMUTABLE:
        return doc
    return copy.deepcopy(doc)


_IMMUTABLE: Final = frozenset({str, int, float, bool, type(None)})


class _NotPlain(Exception):
    """A value :func:`_indented` leaves to ``json.dumps``."""


def _indented(obj: Any, out: list[str], newline: str, step: str) -> None:
    """``obj`` as ``json.dumps(obj, ensure_ascii=True, indent=..., separators=(",", ": "))``
    writes it, byte for byte, for str keys and str, int, finite float, bool, None, list, tuple
    and dict values (json's own type tests, in its order); anything else raises
    :class:`_NotPlain`. Strings go through json's own (C) ASCII escaper."""
    if isinstance(obj, str):
        out.append(_quote_ascii(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        if obj != obj or obj in (_INFINITY, -_INFINITY):
            raise _NotPlain
        out.append(float.__repr__(obj))
    elif isinstance(obj, (list, tuple)):
        if not obj:
            out.append("[]")
            return
        inner = newline + step
        separator = "[" + inner
        for value in obj:
            out.append(separator)
            _indented(value, out, inner, step)
            separator = "," + inner
        out.append(newline + "]")
    elif isinstance(obj, dict):
        if not obj:
            out.append("{}")
            return
        inner = newline + step
        separator = "{" + inner
        for key, value in obj.items():
            if not isinstance(key, str):
                raise _NotPlain
            out.append(separator)
            out.append(_quote_ascii(key))
            out.append(": ")
            _indented(value, out, inner, step)
            separator = "," + inner
        out.append(newline + "}")
    else:
        raise _NotPlain


class _DirSyncs:
    """Coalesces the fsyncs of one directory that threads ask for at the same time.

    A caller returns once an fsync of the directory that *started after it asked* has ended:
    that fsync covers the caller's rename or unlink, which came before the asking. Callers that
    ask while one runs wait for it to end and share the next one: under load (30 calls a
    second, three sidecar writes a call, all in one date folder) one fsync serves several.
    A failed fsync is covered for no one: each waiter then tries (and fails) itself.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._asked: dict[str, int] = {}  # tickets handed out, per directory
        self._done: dict[str, int] = {}  # tickets covered by an ended fsync
        self._running: set[str] = set()

    def sync(self, directory: Path) -> None:
        key = os.fspath(directory)
        with self._cond:
            ticket = self._asked[key] = self._asked.get(key, 0) + 1
            while self._done.get(key, 0) < ticket:
                if key not in self._running:
                    break
                self._cond.wait()
            else:
                return
            self._running.add(key)
            covers = self._asked[key]  # every ticket up to here asked before this fsync
        ok = False
        try:
            _fsync_dir_now(directory)
            ok = True
        finally:
            with self._cond:
                self._running.discard(key)
                if ok:
                    self._done[key] = max(self._done.get(key, 0), covers)
                self._cond.notify_all()


_DIR_SYNCS = _DirSyncs()


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable (done before this call). Concurrent
    calls for one directory share fsyncs (:class:`_DirSyncs`)."""
    _DIR_SYNCS.sync(directory)


def _fsync_dir_now(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(
    path: Path,
    obj: Any,
    *,
    mode: int = FILE_MODE,
    overwrite: bool = True,
    dir_sync: Callable[[Path], None] | None = None,
) -> os.stat_result:
    """Write ``obj`` as JSON to ``path`` atomically and durably, file mode ``mode``; returns
    the new file's status (its inode, size and mtime, as ``os.stat`` of ``path`` would).

    With ``overwrite=False`` the target is created only if it does not exist (``FileExistsError``
    otherwise); the check and the creation are one atomic ``link``. ``dir_sync``: what makes the
    rename durable (default :func:`fsync_dir` at once; the live store's file worker fsyncs each
    directory once per batch, before it acknowledges the write).
    """
    data = (dumps(obj, indent=2) + "\n").encode(
        "ascii"
    )  # encode first: nothing on disk if it fails
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    replaced = False
    try:
        try:  # plain system calls: a buffered file object would cost three more per write
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            written = os.fstat(fd)  # the inode the rename or link puts at ``path``
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
            replaced = True
        else:
            os.link(tmp, path)
    finally:  # left over after a link, or when something failed; gone after the replace
        if not replaced:
            tmp.unlink(missing_ok=True)
    (dir_sync or fsync_dir)(directory)
    return written


def sha256_file(path: Path, *, chunk_size: int = 1 << 20) -> tuple[int, str]:
    """``(bytes, sha256 hex)`` of a file, read in chunks (flat memory for any size)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(chunk_size):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object. ``FileNotFoundError`` passes through; anything else unreadable raises
    :class:`MalformedDocument` naming the path."""
    raw = path.read_bytes()
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedDocument(path, f"not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise MalformedDocument(path, f"expected a JSON object, found {type(obj).__name__}")
    return obj


# -- packaged JSON Schemas ------------------------------------------------------------------

SCHEMA_FILES: Final = ("sidecar.schema.json", "ledger-entry.schema.json")


@cache
def _registry() -> tuple[Registry[Any], dict[str, str]]:
    registry: Registry[Any] = Registry()
    ids: dict[str, str] = {}
    folder = resources.files("callconsent").joinpath("schemas")
    for name in SCHEMA_FILES:
        contents = json.loads(folder.joinpath(name).read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(contents)
        registry = registry.with_resource(contents["$id"], Resource.from_contents(contents))
        ids[name] = contents["$id"]
    return registry, ids


@cache
def schema_validator(name: str, pointer: str = "") -> Any:
    """A Draft 2020-12 validator for packaged schema ``name`` (or its ``#pointer`` part)."""
    registry, ids = _registry()
    ref = ids[name] + (f"#{pointer}" if pointer else "")
    return Draft202012Validator({"$ref": ref}, registry=registry)


def schema_errors(validator: Any, doc: Mapping[str, Any]) -> list[str]:
    """Every schema violation as ``"<json path>: <message>"``, most specific first."""
    errors = sorted(
        validator.iter_errors(doc), key=lambda e: (-len(e.path), list(map(str, e.path)))
    )
    return [f"{e.json_path}: {e.message}" for e in errors]
