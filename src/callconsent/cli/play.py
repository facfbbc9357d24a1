"""``callconsent play``: listen to one recording, for people allowed to (R33, R35).

    callconsent play 1764000000.12 --reason "complaint 2026-31"            # play or aplay
    callconsent play 1764000000.12 --reason "QA" --player "mpv --no-video"
    callconsent play 1764000000.12 --reason "QA" --stdout | aplay            # never to a terminal

The recording is decrypted (when encrypted at rest: the config's key-encryption key is needed)
into a private temporary file (its own 0700 folder, the file 0600) that the player reads and
that is removed afterwards, also on Ctrl-C or SIGTERM; with ``--stdout`` the WAV goes to
standard output instead, which must not be a terminal. Every use is in the audit log: who,
which call, when and why (the call's id only, never the caller's number). Unknown ids, a
recording deleted or erased, a missing key and a missing player are clear errors (exit 2).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, Final

from callconsent.cli._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    add_config_option,
    load_or_exit,
)
from callconsent.clock import utc_now
from callconsent.config import Config
from callconsent.encryption import at_rest_for
from callconsent.evidence import sidecar
from callconsent.evidence.at_rest import plain_chunks
from callconsent.evidence.crypto import DecryptionError
from callconsent.evidence.fsio import MalformedDocument
from callconsent.evidence.paths import RecordingPaths, UnsafeIdentifier
from callconsent.lifecycle import Context, query
from callconsent.lifecycle.errors import LifecycleError

#: Tried in this order when no ``--player`` is given (sox's ``play``, ALSA's ``aplay``).
PLAYERS: Final = ("play", "aplay")


class PlayError(Exception):
    """What stops ``play``, said for the person at the terminal (exit 2)."""


def _player(given: str | None) -> list[str]:
    if given is not None:
        cmd = shlex.split(given)
        if not cmd or shutil.which(cmd[0]) is None:
            raise PlayError(f"--player {given!r}: no such program")
        return cmd
    for name in PLAYERS:
        if shutil.which(name) is not None:
            return [name]
    raise PlayError(
        "no player found (play from sox, aplay from alsa-utils): install one, give --player "
        "CMD, or use --stdout and pipe it to a player"
    )


def _find(ctx: Context, call_id: str) -> tuple[RecordingPaths, dict[str, Any]]:
    """The recording of ``call_id`` and its final sidecar, or :class:`PlayError`."""
    with ctx.index.locked(shared=True):
        ctx.index.update()
        found = query.recordings(ctx.index, [call_id])
    if not found:
        raise PlayError(f"no recording of call {call_id!r}")
    paths = ctx.paths(found[0].file)
    try:
        doc = sidecar.load(paths)
    except FileNotFoundError:
        raise PlayError(f"call {call_id!r}: the recording is gone (no sidecar)") from None
    if doc["state"] == sidecar.State.TOMBSTONE:
        raise PlayError(f"call {call_id!r}: the recording was deleted ({doc.get('reason')})")
    if doc["state"] != sidecar.State.FINAL:
        raise PlayError(f"call {call_id!r}: the recording is {doc['state']}, not final yet")
    if not paths.audio.exists():
        raise PlayError(f"call {call_id!r}: the audio file is missing ({found[0].file})")
    return paths, doc


def _write(config: Config, paths: RecordingPaths, doc: dict[str, Any], out: BinaryIO) -> None:
    try:
        for block in plain_chunks(at_rest_for(config), paths, doc):
            out.write(block)
    except FileNotFoundError as exc:  # the data key (or the file) went: erased or purged
        raise PlayError(f"no data key for this recording ({exc.filename}): erased") from None
    except DecryptionError as exc:
        raise PlayError(f"cannot decrypt: {exc}") from None


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: the temp file goes


@contextmanager
def _private_file() -> Iterator[Path]:
    """A new empty file (0600) in a new folder (0700), both removed on the way out."""
    folder = Path(tempfile.mkdtemp(prefix="callconsent-play-"))
    path = folder / "recording.wav"
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        yield path
    finally:
        signal.signal(signal.SIGTERM, previous)
        path.unlink(missing_ok=True)
        folder.rmdir()


def _play(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        print("error: say why (--reason): every listening is audited", file=sys.stderr)
        return EXIT_USAGE
    if args.stdout and sys.stdout.isatty():
        print("error: --stdout writes audio: redirect it to a file or a player", file=sys.stderr)
        return EXIT_USAGE
    config = load_or_exit(args.config)
    try:
        player = None if args.stdout else _player(args.player)
        with Context.from_config(config, now=utc_now(), actor=args.actor) as ctx:
            paths, doc = _find(ctx, args.call_id)
            way = "stdout" if player is None else shlex.join(player)
            ctx.audit.write(
                "play", actor=ctx.actor, at=ctx.now, reason=args.reason, ids=[args.call_id], via=way
            )
        if player is None:
            _write(config, paths, doc, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return EXIT_OK
        with _private_file() as wav:
            with wav.open("wb") as out:
                _write(config, paths, doc, out)
            done = subprocess.run([*player, str(wav)], check=False)  # the operator's player
    except PlayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("play: stopped (the temporary copy is removed)", file=sys.stderr)
        return 130
    except (UnsafeIdentifier, MalformedDocument, LifecycleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, sqlite3.Error) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if done.returncode != 0:
        print(f"error: the player {player[0]} exited with {done.returncode}", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("play", help="listen to one recording (decrypted; audited)")
    add_config_option(p)
    p.add_argument("call_id", metavar="ID", help="the call's uniqueid")
    p.add_argument("--reason", required=True, help="why (in the audit log)")
    p.add_argument("--actor", help="who listens, when not the OS user (in the audit log)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--player", help="the player command (default: play, else aplay)")
    how.add_argument(
        "--stdout", action="store_true", help="write the WAV to stdout (never to a terminal)"
    )
    p.set_defaults(run=_play)
