"""``callconsent decrypt`` and ``callconsent rewrap``: recordings encrypted at rest (R33).

    callconsent decrypt --call-id 1764000000.12 --out /tmp/call.wav --reason "DSAR 2026-14"
    callconsent rewrap                      # after a key rotation: every data key under key_id

``decrypt`` is for people allowed to hear a recording: it needs the config's key-encryption key
(read access to its key file or variable) and writes the WAV (mode 0600, never over an existing
file); every use is in the audit log with who, when and why. A recording whose data key was
destroyed (erased, purged) cannot be decrypted by anyone: exit 1. ``rewrap`` re-wraps every data
key under the current ``encryption.key_id``; afterwards the previous keys can be removed from
the config.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from callconsent.cli._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    add_config_option,
    load_or_exit,
)
from callconsent.clock import utc_now
from callconsent.encryption import at_rest_for
from callconsent.evidence import sidecar
from callconsent.evidence.crypto import DecryptionError
from callconsent.evidence.fsio import MalformedDocument
from callconsent.evidence.paths import UnsafeIdentifier
from callconsent.lifecycle import Context, query


def _decrypt(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    at_rest = at_rest_for(config)
    if at_rest is None:
        print("error: the config has no encryption section", file=sys.stderr)
        return EXIT_USAGE
    if not args.reason.strip():
        print("error: say why (--reason): every decryption is audited", file=sys.stderr)
        return EXIT_USAGE
    out: Path = args.out
    try:
        with Context.from_config(config, now=utc_now()) as ctx:
            with ctx.index.locked(shared=True):
                ctx.index.update()
                found = query.recordings(ctx.index, [args.call_id])
            if not found:
                print(f"error: no recording of call {args.call_id!r}", file=sys.stderr)
                return EXIT_USAGE
            paths = ctx.paths(found[0].file)
            doc = sidecar.load(paths)
            if doc["state"] != sidecar.State.FINAL:
                print(f"error: {found[0].file} is {doc['state']}, not final", file=sys.stderr)
                return EXIT_PROBLEMS
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as dst:
                    for block in at_rest.plain_chunks(paths, doc):
                        dst.write(block)
            except (DecryptionError, FileNotFoundError, OSError):
                out.unlink(missing_ok=True)
                raise
            ctx.audit.write(
                "decrypt", actor=ctx.actor, at=ctx.now, reason=args.reason, ids=[args.call_id]
            )
    except FileExistsError:
        print(f"error: {out} exists: choose a new file", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as exc:
        print(f"error: no data key or file ({exc.filename}): erased or purged", file=sys.stderr)
        return EXIT_PROBLEMS
    except (DecryptionError, MalformedDocument, UnsafeIdentifier) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except (OSError, sqlite3.Error) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"decrypted {found[0].file} to {out} (sha256 {doc['recording']['sha256']})")
    return EXIT_OK


def _rewrap(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    at_rest = at_rest_for(config)
    if at_rest is None:
        print("error: the config has no encryption section", file=sys.stderr)
        return EXIT_USAGE
    try:
        moved = at_rest.keys.rewrap() if at_rest.keys.folder.exists() else 0
        with Context.from_config(config, now=utc_now()) as ctx:
            ctx.audit.write(
                "rewrap", actor=ctx.actor, at=ctx.now, reason=at_rest.keys.current, ids=[]
            )
    except (DecryptionError, MalformedDocument, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"{moved} data key(s) re-wrapped under {at_rest.keys.current}")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("decrypt", help="decrypt one recording to a WAV file (audited)")
    add_config_option(p)
    p.add_argument("--call-id", required=True, help="the call's uniqueid")
    p.add_argument("--out", type=Path, required=True, help="the WAV file to write (new)")
    p.add_argument("--reason", required=True, help="why (in the audit log)")
    p.set_defaults(run=_decrypt)
    p = subparsers.add_parser("rewrap", help="re-wrap every data key under the current key")
    add_config_option(p)
    p.set_defaults(run=_rewrap)
