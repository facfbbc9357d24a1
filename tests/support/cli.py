"""Running the ``callconsent`` lifecycle subcommands in-process, with a config object injected
(no YAML file, no environment): ``run(config, "purge", "--json") -> exit code``."""

from __future__ import annotations

import argparse
from pathlib import Path

from callconsent.cli import lifecycle
from callconsent.config import Config


def run(config: Config, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="callconsent")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, default=config.path)

    lifecycle.register(sub, with_config, lambda _path: config)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result
