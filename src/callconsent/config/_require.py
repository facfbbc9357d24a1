"""What ``serve`` needs before it may record (R1, R2): the party watch.

A recording may go on only while the organisation takes part in the call (straffeloven § 263).
The app sees who takes part only through AMI (bridge, dial, hold and hangup events) and tells
its own channels from outside ones only by ``parties.internal``. So while any enabled route can
record, both keys are required: ``check-config`` fails (exit 2) and ``serve`` refuses to start
without them. The offline lifecycle commands (purge, export, ...) do not need them and still run.
"""

from __future__ import annotations

from ._model import Config

REQUIRED_KEYS = ("asterisk.ami", "parties.internal")


def recording_prerequisites(config: Config) -> tuple[str, ...]:
    """One error line per enabled route that can record while a key it needs is missing, each
    naming both keys and the missing ones; empty when ``serve`` may start."""
    missing = [
        key
        for key, present in zip(
            REQUIRED_KEYS,
            (config.asterisk.ami is not None, config.parties is not None),
            strict=True,
        )
        if not present
    ]
    if not missing:
        return ()
    return tuple(
        f"{config.path}: {' and '.join(REQUIRED_KEYS)}: both are required while route "
        f"{route.name!r} is enabled (it records, and a recording must stop when the "
        "organisation leaves or holds the call, R1/R2); missing: "
        f"{', '.join(missing)}"
        for route in config.routes.values()
        if route.enabled and route.purposes
    )
