"""Reading the YAML file into the config tree. Legal cross-checks live in ``_validate``."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeVar, cast
from urllib.parse import urlsplit

import yaml

from callconsent.names import AGENT_WAIT_SECONDS, APP_NAME

from ._agi import read_agi
from ._encryption import read_encryption
from ._errors import ConfigError, Problems
from ._load_routes import read_route
from ._model import (
    CONTROLLER_TYPES,
    LAWFUL_BASES,
    PURPOSES,
    AgentConsentConfig,
    AmiConfig,
    AriConfig,
    AsteriskConfig,
    Config,
    ControllerType,
    MetricsConfig,
    Notice,
    NoticeText,
    Organisation,
    PartiesConfig,
    PromptText,
    PurposeName,
    Secret,
    StorageConfig,
)
from ._read import Node, read_audio_name, read_prompt
from ._sanity import (
    MAX_CONFIG_BYTES,
    check_retention,
    check_spool,
    check_storage,
    read_regular_file,
    warn_spool,
)
from ._validate import validate

NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
LANGUAGE_RE: Final = re.compile(r"^[a-z]{2}$")
DEFAULT_ARI_URL: Final = "http://127.0.0.1:8088"
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also refuses a key written twice in one mapping, and aliases
    (``*name``: a few KB of nested aliases expand to gigabytes)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # PyYAML has no types here
            raise yaml.composer.ComposerError(
                None, None, f"YAML aliases (*{event.anchor}) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            continue  # unhashable key: construct_mapping reports it
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"key {key!r} is written twice",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def _parse_yaml(data: bytes, file: str) -> object:
    try:
        return yaml.load(data, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}" if mark else file
        column = f" (column {mark.column + 1})" if mark else ""
        raise ConfigError([f"{where}: YAML syntax error: {exc.problem}{column}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{file}: YAML syntax error: {exc}"]) from None


def load_config(path: Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Read, check and return the config; raise ``ConfigError`` listing every problem.

    ``env`` is where ``password_env`` is looked up (``os.environ`` when None), when a command
    that connects to Asterisk reveals the secret: loading never reads a secret.
    """
    file = str(path)
    try:
        data = read_regular_file(path, limit=MAX_CONFIG_BYTES)
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read: {exc.strerror or exc}"]) from None
    except ValueError as exc:
        raise ConfigError([f"{file}: {exc}"]) from None
    raw = _parse_yaml(data, file)
    problems = Problems(file)
    top = Node(raw, "", problems)
    organisation = _organisation(top.child("organisation", required=True))
    asterisk = _asterisk(top.child("asterisk", required=True), env)
    storage = _storage(top.child("storage", required=True))
    prompts_dir = _abs_path(top, "prompts_dir")
    if "," in str(prompts_dir):  # ARI reads a comma as the end of one media URI of a list
        problems.error(top.at("prompts_dir"), "must not contain a comma (ARI's media list)")
    tts_wpm = top.integer("tts_words_per_minute", 165)
    if not 80 <= tts_wpm <= 400:
        problems.error(top.at("tts_words_per_minute"), "must be 80 to 400 words per minute")
    agent_node = top.child("agent_consent")
    registry = _abs_path(agent_node, "registry_path", storage.ledger_path.parent / "agents.json")
    whisper_language = agent_node.opt_string("whisper_language", "da") or "da"
    if not LANGUAGE_RE.match(whisper_language):
        problems.error(agent_node.at("whisper_language"), "must be a two-letter code such as da")
    answer_wait = agent_node.number("answer_wait_seconds", AGENT_WAIT_SECONDS)
    if not 1.0 <= answer_wait <= 10.0:
        problems.error(agent_node.at("answer_wait_seconds"), "must be 1 to 10 seconds")
    agent_node.done()
    parties = _parties(top.child("parties"))
    agi = read_agi(top.child("agi"))
    enc_node = top.child("encryption")  # absent: recordings are stored in clear
    enc_env = os.environ if env is None else env
    encryption = read_encryption(enc_node, enc_env) if top.has("encryption") else None
    notices = _named(top.child("notices", required=True), _notice)
    controller_type = organisation.controller_type or "private"
    routes = _named(top.child("routes"), lambda n, r, p: read_route(n, r, p, controller_type))
    metrics = _metrics(top.child("metrics"))
    top.done()
    config = Config(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        organisation=organisation,
        asterisk=asterisk,
        storage=storage,
        prompts_dir=prompts_dir,
        agent_consent=AgentConsentConfig(
            registry_path=registry,
            whisper_language=whisper_language,
            answer_wait_seconds=answer_wait,
        ),
        notices=notices,
        routes=routes,
        parties=parties,
        tts_words_per_minute=tts_wpm,
        agi=agi,
        metrics=metrics,
        encryption=encryption,
    )
    validate(config, problems)
    warn_spool(config.storage, encryption is not None, problems)
    _warn_agent_bridge(config, problems)
    _warn_parties(config, problems)
    if problems.errors:
        raise ConfigError(problems.errors, tuple(problems.warnings))
    return dataclasses.replace(config, warnings=tuple(problems.warnings))


_CHANNEL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]*/[^\s]+$")


def _parties(node: Node) -> PartiesConfig | None:
    """``parties.internal``: the organisation's own channels (R1). Absent: not watched."""
    if not node.has("internal"):
        node.done()
        return None
    patterns = node.strings("internal")
    for index, pattern in enumerate(patterns):
        if not _CHANNEL_PATTERN.match(pattern):
            node.problems.error(
                f"{node.at('internal')}[{index}]",
                f"{pattern!r} is not a channel name pattern such as PJSIP/agent* (technology, "
                "'/', then the endpoint; no spaces)",
            )
    if not patterns:
        node.problems.error(node.at("internal"), "must list at least one channel name pattern")
    node.done()
    return PartiesConfig(patterns)


def _warn_parties(config: Config, problems: Problems) -> None:
    """Without ``parties`` a recording follows the caller through transfers (R1)."""
    if config.parties is None and any(r.enabled for r in config.routes.values()):
        problems.warn(
            "parties.internal",
            "not set: a recording is not stopped when the call is transferred or forwarded "
            "outside the organisation, or to an agent without consent (R1)",
        )


def _warn_agent_bridge(config: Config, problems: Problems) -> None:
    """Training needs the agent's consent at the bridge, which needs AMI (R15)."""
    if config.asterisk.ami is not None:
        return
    for route in config.routes.values():
        if route.enabled and "training" in route.purposes:
            problems.warn(
                f"routes.{route.name}.purposes.training",
                "asterisk.ami is not configured: the agent's consent cannot be checked, so no "
                "call on this route is recorded for training",
            )


T = TypeVar("T")


def _named(node: Node, read: Callable[[str, object, Problems], T]) -> Mapping[str, T]:
    out: dict[str, T] = {}
    for name, raw in node.entries():
        if not NAME_RE.match(name):
            node.problems.error(node.at(name), "name must match ^[a-z][a-z0-9_-]{0,31}$")
            continue
        out[name] = read(name, raw, node.problems)
    return MappingProxyType(out)


def _abs_path(node: Node, key: str, default: Path | None = None) -> Path:
    text = node.opt_string(key)
    if text is None:
        if default is None:
            node.missing(key)
            return Path("/nonexistent")
        return default
    path = Path(text)
    if not path.is_absolute():
        node.problems.error(node.at(key), f"must be an absolute path, got {text!r}")
    return path


def _organisation(node: Node) -> Organisation:
    name = node.string("name")
    controller_type = cast(ControllerType, node.choice("controller_type", CONTROLLER_TYPES))
    privacy_url = node.string("privacy_url")
    if privacy_url and not privacy_url.startswith(("https://", "http://")):
        node.problems.error(node.at("privacy_url"), "must be an http(s) URL (the full Art 13 text)")
    dpo = node.opt_string("dpo_contact")
    if dpo is None and controller_type == "public_authority":
        node.problems.error(node.at("dpo_contact"), "a public authority must name its DPO (Art 37)")
    node.done()
    return Organisation(name, controller_type, privacy_url, dpo)


def _asterisk(node: Node, env: Mapping[str, str] | None) -> AsteriskConfig:
    ari = node.child("ari", required=True)
    url = ari.opt_string("url", DEFAULT_ARI_URL) or DEFAULT_ARI_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        ari.problems.error(ari.at("url"), f"must be an http(s) URL, got {url!r}")
    elif parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        ari.problems.error(ari.at("url"), "ARI must be reached over localhost or https (R35)")
    username = ari.string("username")
    password = _password(ari, env)
    app = ari.opt_string("app", APP_NAME) or APP_NAME
    ari.done()
    ami = _ami(node.child("ami"), env) if node.has("ami") else None
    node.done()
    return AsteriskConfig(AriConfig(url, username, password, app), ami)


def _ami(node: Node, env: Mapping[str, str] | None) -> AmiConfig:
    host = node.opt_string("host", "127.0.0.1") or "127.0.0.1"
    if host not in LOOPBACK_HOSTS:
        node.problems.error(node.at("host"), "AMI is plain TCP: reach it over localhost only (R35)")
    port = node.integer("port", 5038)
    if not 0 < port < 65536:
        node.problems.error(node.at("port"), f"must be a TCP port, got {port}")
    username = node.string("username")
    password = _password(node, env)
    node.done()
    return AmiConfig(host, port, username, password)


def _password(node: Node, env: Mapping[str, str] | None) -> Secret:
    """How the password is named: checked now, read only by the commands that connect."""
    if node.has("password"):
        node.opt_string("password")  # never echo it
        node.problems.error(
            node.at("password"),
            "a password is never written in the config: use password_env or password_file",
        )
    env_name = node.opt_string("password_env")
    file_name = node.opt_string("password_file")
    if env_name and file_name:
        node.problems.error(node.at("password_env"), "give password_env or password_file, not both")
        return Secret("")
    if env_name:
        return Secret.from_env(f"{node.problems.file}: {node.at('password_env')}", env_name, env)
    if file_name:
        path = Path(file_name)
        if not path.is_absolute():
            node.problems.error(
                node.at("password_file"), f"must be an absolute path, got {str(path)!r}"
            )
            return Secret("")
        return Secret.from_file(f"{node.problems.file}: {node.at('password_file')}", path)
    node.problems.error(node.at("password_env"), "missing: set password_env or password_file")
    return Secret("")


def _storage(node: Node) -> StorageConfig:
    storage = StorageConfig(
        recordings_dir=_abs_path(node, "recordings_dir"),
        ledger_path=_abs_path(node, "ledger_path"),
        notice_archive_dir=_abs_path(node, "notice_archive_dir"),
        anchor_path=_abs_path(node, "anchor_path") if node.has("anchor_path") else None,
        spool_dir=_abs_path(node, "spool_dir") if node.has("spool_dir") else None,
    )
    check_storage(node, storage.recordings_dir, storage.ledger_path, storage.notice_archive_dir)
    check_spool(node, storage)
    node.done()
    return storage


def _notice(name: str, raw: object, problems: Problems) -> Notice:
    node = Node(raw, f"notices.{name}", problems)
    version = node.string("version")
    purpose = cast(PurposeName, node.choice("purpose", PURPOSES))
    lawful_basis = node.choice("lawful_basis", LAWFUL_BASES)
    retention_days = node.integer("retention_days")
    check_retention(node, "retention_days", retention_days)
    languages: dict[str, NoticeText] = {}
    lang_node = node.child("languages", required=True)
    for lang, lang_raw in lang_node.entries():
        if not LANGUAGE_RE.match(lang):
            problems.error(lang_node.at(lang), "must be a two-letter language code such as da, en")
            continue
        text = Node(lang_raw, lang_node.at(lang), problems)
        languages[lang] = NoticeText(
            language=lang,
            prompt=PromptText(read_audio_name(text), text.string("transcript")),
            controller=text.string("controller"),
            purpose_text=text.string("purpose"),
            basis_text=text.string("basis"),
            retention_text=text.string("retention"),
            rights=text.string("rights"),
            info_url=text.string("info_url"),
            withdrawal=text.opt_string("withdrawal"),
            objection=text.opt_string("objection"),
            question=read_prompt(text, "question"),
            explicit_question=read_prompt(text, "explicit_question"),
            retry=read_prompt(text, "retry"),
        )
        text.done()
    node.done()
    return Notice(name, version, purpose, lawful_basis, retention_days, MappingProxyType(languages))


def _metrics(node: Node) -> MetricsConfig:
    """``metrics``: serve's /metrics and /health (issue 15). Off with ``enabled: false``."""
    default = MetricsConfig()
    enabled = node.boolean("enabled", default.enabled)
    host = node.opt_string("host", default.host) or default.host
    port = node.integer("port", default.port)
    if not 0 < port < 65536:
        node.problems.error(node.at("port"), f"must be a TCP port, got {port}")
    if enabled and host not in LOOPBACK_HOSTS:
        node.problems.warn(
            node.at("host"),
            f"{host} is not loopback: the metrics (call counts) are served without "
            "authentication to whoever reaches that address",
        )
    node.done()
    return MetricsConfig(enabled=enabled, host=host, port=port)
