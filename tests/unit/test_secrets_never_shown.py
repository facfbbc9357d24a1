"""Secrets (the ARI and AMI passwords, the call reference key) never appear in any output of
the commands, their --help, their logs or the files they write (issue 11): every command runs
against a config whose secrets are distinctive strings, and everything is searched for them."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from callconsent.cli.main import build_parser
from callconsent.config import Config, load_config
from callconsent.evidence import callref
from tests.support.stasis_fakes import load_demo

ARI_SECRET = "ari-S3cret-91bd-never-shown"
AMI_SECRET = "ami-S3cret-7f3a-never-shown"
KEY = b"callref-KEY-5ecret-0123456789abc"  # 32 bytes
SECRETS = [ARI_SECRET, AMI_SECRET, KEY.decode(), KEY.hex()]
ENV = {**os.environ, "CALLCONSENT_ARI_PASSWORD": ARI_SECRET, "CC_TEST_AMI_SECRET": AMI_SECRET}
SUBCOMMANDS = [
    "serve", "check-config", "prompts", "verify", "reconcile", "agent", "index", "purge", "hold",
    "export", "identify", "erase", "withdraw", "ropa",
]  # fmt: skip


def _config(tmp_path: Path) -> Config:
    path = load_demo(tmp_path).path
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["asterisk"]["ari"]["url"] = "http://127.0.0.1:1"  # nothing listens: connects fail
    data["asterisk"]["ami"]["port"] = 1
    data["asterisk"]["ami"]["password_env"] = "CC_TEST_AMI_SECRET"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(path, env=ENV)
    key = callref.key_path(config.storage.ledger_path)
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_bytes(KEY)
    return config


def _run(*args: str, timeout: float = 60.0) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "callconsent.cli.main", *args],
        env=ENV,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    return proc.stdout + proc.stderr


def _help(sub: str) -> str:
    parser = build_parser()
    if not sub:
        return parser.format_help()
    with contextlib.redirect_stdout(io.StringIO()) as out, pytest.raises(SystemExit):
        parser.parse_args([sub, "--help"])
    return out.getvalue()


def _serve_briefly(config: Config, seconds: float = 3.0) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-m", "callconsent.cli.main", "serve", "--config", str(config.path)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    time.sleep(seconds)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out.decode(errors="replace")


def _files(root: Path) -> str:
    return "".join(
        p.read_bytes().decode("latin-1")
        for p in root.rglob("*")
        if p.is_file() and p.name != callref.KEY_NAME
    )


def test_no_command_output_log_help_or_written_file_holds_a_secret(tmp_path: Path) -> None:
    config = _config(tmp_path)
    c = ("--config", str(config.path))
    outputs = [
        *(_help(sub) for sub in ["", *SUBCOMMANDS]),
        _run("check-config", str(config.path)),
        _run("agent", "set", "agent9", "--consent", "given", "--actor", "t:1", *c),  # AMI fails
        _run("agent", "list", *c),
        _run("agent", "sync", *c),
        _run("verify", *c),
        _run("index", "rebuild", *c),
        _run("withdraw", "--call-id", "1764000000.1", "--reason", "letter", "--actor", "t", *c),
        _run("ropa", *c),
        _serve_briefly(config),
    ]
    everything = "\n".join(outputs) + _files(tmp_path)
    assert "usage: callconsent withdraw" in everything  # the help texts were read
    assert "127.0.0.1:1" in everything  # serve and the AMI commands tried to connect
    for secret in SECRETS:
        assert secret not in everything, f"{secret!r} leaked"
    assert "Traceback" not in everything


def test_the_config_never_shows_its_passwords_in_repr_or_str(tmp_path: Path) -> None:
    config = _config(tmp_path)
    text = repr(config) + str(config) + repr(config.asterisk) + str(config.asterisk)
    assert ARI_SECRET not in text and AMI_SECRET not in text
