"""``callconsent check-config FILE``: the verdict on a config file, for an admin or CI."""

from __future__ import annotations

import sys
from pathlib import Path

from ._errors import ConfigError
from ._load import load_config
from ._require import recording_prerequisites


def check_config_main(path: Path) -> int:
    """Print ``OK: <file>`` and the warnings (exit code 0), or every error (exit code 2)."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"error: {line}", file=sys.stderr)
        for line in exc.warnings:
            print(f"warning: {line}", file=sys.stderr)
        print(f"FAILED: {path} ({len(exc.errors)} error(s))", file=sys.stderr)
        return 2
    missing = recording_prerequisites(config)
    if missing:  # serve would refuse to start (R1, R2)
        for line in missing:
            print(f"error: {line}", file=sys.stderr)
        for line in config.warnings:
            print(f"warning: {line}", file=sys.stderr)
        print(f"FAILED: {path} ({len(missing)} error(s))", file=sys.stderr)
        return 2
    print(f"OK: {path}")
    for line in config.warnings:
        print(f"warning: {line}")
    enabled = [name for name, route in config.routes.items() if route.enabled]
    print(f"routes enabled: {', '.join(enabled) if enabled else 'none (nothing is recorded)'}")
    print(f"config sha256: {config.sha256}")
    return 0
