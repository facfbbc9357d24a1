"""The callconsent config: one frozen, typed object, loaded from YAML and checked at start-up.

    config = load_config(Path("config/callconsent.yaml"))    # raises ConfigError
    route = route_for(config, route_arg="support", dialled=None)
    plan = build_plan(config, route.name, sampled=lambda rate: random.random() < rate)

``config/callconsent.yaml`` documents every key. The rules checked are in ``_validate``.
"""

from __future__ import annotations

from ._audio import audio_files, media_uri, sha256_file
from ._check import check_config_main
from ._errors import ConfigError
from ._load import load_config
from ._model import (
    AgentConsentConfig,
    AgiConfig,
    AmiConfig,
    AriConfig,
    AsteriskConfig,
    Config,
    ConsentSettings,
    EncryptionConfig,
    LanguageMenu,
    Notice,
    NoticeText,
    ObjectionSettings,
    Organisation,
    PartiesConfig,
    PromptText,
    Route,
    RoutePurpose,
    Secret,
    StorageConfig,
)
from ._plan import build_plan, route_for

__all__ = [
    "AgentConsentConfig",
    "AgiConfig",
    "AmiConfig",
    "AriConfig",
    "AsteriskConfig",
    "Config",
    "ConfigError",
    "ConsentSettings",
    "EncryptionConfig",
    "LanguageMenu",
    "Notice",
    "NoticeText",
    "ObjectionSettings",
    "Organisation",
    "PartiesConfig",
    "PromptText",
    "Route",
    "RoutePurpose",
    "Secret",
    "StorageConfig",
    "audio_files",
    "build_plan",
    "check_config_main",
    "load_config",
    "media_uri",
    "route_for",
    "sha256_file",
]
