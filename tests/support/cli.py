"""The lifecycle subcommands run as the CLI runs them (argparse, the real handlers), with a
config object in place of a config file."""

from __future__ import annotations

import argparse
from pathlib import Path

from callconsent.config import Config
from callconsent.lifecycle import commands


def run(config: Config, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="callconsent")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, default=config.path)

    commands.register(sub, with_config, lambda _path: config)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result
