"""The callconsent config: one frozen, typed object, loaded from YAML and checked at start-up.

    config = load_config(Path("config/callconsent.yaml"))    # raises ConfigError
    route = route_for(config, route_arg="support", dialled=None)
    plan = build_plan(config, route.name, sampled=lambda rate: random.random() < rate)

``config/callconsent.yaml`` documents every key. The rules checked are in ``_validate``.
"""

from __future__ import annotations

from ._audio import audio_files, media_uri, sha256_file
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
    MetricsConfig,
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
from ._require import REQUIRED_KEYS, recording_prerequisites
from ._secret import SecretUnavailable

__all__ = [
    "REQUIRED_KEYS",
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
    "MetricsConfig",
    "Notice",
    "NoticeText",
    "ObjectionSettings",
    "Organisation",
    "PartiesConfig",
    "PromptText",
    "Route",
    "RoutePurpose",
    "Secret",
    "SecretUnavailable",
    "StorageConfig",
    "audio_files",
    "build_plan",
    "load_config",
    "media_uri",
    "recording_prerequisites",
    "route_for",
    "sha256_file",
]
