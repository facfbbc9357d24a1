"""The config object: a tree of frozen dataclasses, built only by ``load_config``.

Names mirror the YAML keys (see ``config/callconsent.yaml``, where every key is explained).
Mappings are read-only views that keep the YAML order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from callconsent.names import AGENT_WAIT_SECONDS

from ._secret import Secret as Secret  # re-exported: the model names it

ControllerType = Literal["private", "public_authority"]
PurposeName = Literal["documentation", "training", "emergency_quality"]
SpecialCategories = Literal["likely", "unlikely"]
ObjectionAction = Literal["do_not_record", "record_with_grounds"]
CallReference = Literal["off", "withheld", "always"]

PURPOSES: Final[tuple[PurposeName, ...]] = ("documentation", "training", "emergency_quality")
CONTROLLER_TYPES: Final[tuple[ControllerType, ...]] = ("private", "public_authority")
SPECIAL_CATEGORIES: Final[tuple[SpecialCategories, ...]] = ("likely", "unlikely")
OBJECTION_ACTIONS: Final[tuple[ObjectionAction, ...]] = ("do_not_record", "record_with_grounds")
CALL_REFERENCE: Final[tuple[CallReference, ...]] = ("off", "withheld", "always")

#: GDPR Art 6(1) points a purpose may name, and the consent one.
LAWFUL_BASES: Final = ("6(1)(a)", "6(1)(b)", "6(1)(c)", "6(1)(d)", "6(1)(e)", "6(1)(f)")
CONSENT_BASIS: Final = "6(1)(a)"
#: GDPR Art 9(2) points, and the explicit-consent one.
ART9_BASES: Final = tuple(f"9(2)({c})" for c in "abcdefghij")
EXPLICIT_CONSENT_ART9: Final = "9(2)(a)"

#: Danish is the fallback language of every notice (R6).
FALLBACK_LANGUAGE: Final = "da"
#: Audio formats looked for beside a prompt's base name, in order of preference.
AUDIO_EXTENSIONS: Final = (".wav", ".sln", ".gsm")


@dataclass(frozen=True, slots=True)
class Organisation:
    name: str
    controller_type: ControllerType
    privacy_url: str
    dpo_contact: str | None


@dataclass(frozen=True, slots=True)
class AriConfig:
    url: str
    username: str
    password: Secret = field(repr=False)
    app: str


@dataclass(frozen=True, slots=True)
class AmiConfig:
    """AMI (manager.conf): the agent-consent mirror in AstDB and the recording start at the agent
    bridge (R15). Plain TCP, so loopback only."""

    host: str
    port: int
    username: str
    password: Secret = field(repr=False)


@dataclass(frozen=True, slots=True)
class AsteriskConfig:
    ari: AriConfig
    ami: AmiConfig | None = None  # None: no agent bridge; nothing that needs an agent is recorded


@dataclass(frozen=True, slots=True)
class StorageConfig:
    recordings_dir: Path
    ledger_path: Path
    notice_archive_dir: Path
    #: the ledger's anchor (head and holds, rewritten on every append); None: <ledger>.anchor
    anchor_path: Path | None = None
    #: with ``encryption``: where MixMonitor writes the clear WAV while the call records (owned
    #: by the Asterisk user, nothing for others, outside the recordings tree); None: in the tree
    spool_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class AgentConsentConfig:
    registry_path: Path
    whisper_language: str = "da"  # the language of the whisper the agent hears (text 12)
    #: how long the agent gosub waits for the app's answer before it whispers "not for
    #: training" (and the app then refuses training for that call): seconds
    answer_wait_seconds: float = AGENT_WAIT_SECONDS


@dataclass(frozen=True, slots=True)
class PartiesConfig:
    """Who is the organisation on a call (R1): shell-style patterns of Asterisk channel names
    without their unique suffix (``PJSIP/agent*``). Any other party is external."""

    internal: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PromptText:
    """One prompt: the audio base name under ``<prompts_dir>/<lang>/`` and what it says."""

    audio: str
    transcript: str


@dataclass(frozen=True, slots=True)
class NoticeText:
    """A notice in one language: the prompt and its first-layer elements (R5), each a sentence
    or phrase that also appears in the transcript."""

    language: str
    prompt: PromptText
    controller: str
    purpose_text: str
    basis_text: str
    retention_text: str
    rights: str
    info_url: str
    withdrawal: str | None = None
    objection: str | None = None
    question: PromptText | None = None
    explicit_question: PromptText | None = None
    retry: PromptText | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice version. Changing purpose, basis or retention needs a new one (R20)."""

    name: str
    version: str
    purpose: PurposeName
    lawful_basis: str
    retention_days: int
    languages: Mapping[str, NoticeText]


@dataclass(frozen=True, slots=True)
class ConsentSettings:
    """How a consent purpose asks: always opt-in, one digit after the question (R11, R12)."""

    mode: Literal["opt_in"] = "opt_in"
    accept_digit: str = "1"
    refuse_digit: str | None = "2"
    timeout_seconds: float = 8.0
    retries: int = 1
    withdraw_sequence: str = "*9"
    confirm: bool = True  # the caller hears texts 6/7 after answering


@dataclass(frozen=True, slots=True)
class ObjectionSettings:
    """The right to object to 6(1)(e)/(f) documentation (Art 21, R30)."""

    digit: str | None = None
    action: ObjectionAction = "do_not_record"
    compelling_grounds_ref: str | None = None


@dataclass(frozen=True, slots=True)
class RoutePurpose:
    purpose: PurposeName
    notice: str
    lawful_basis: str
    retention_days: int
    necessity_assessment_ref: str | None = None
    art9_basis: str | None = None
    sample_rate: float = 1.0
    consent: ConsentSettings | None = None
    objection: ObjectionSettings | None = None

    @property
    def needs_consent(self) -> bool:
        return self.consent is not None


@dataclass(frozen=True, slots=True)
class LanguageMenu:
    """``language: menu``: one prompt offering digits that switch from Danish to a language."""

    options: Mapping[str, str]
    prompt: PromptText
    prompt_language: str
    timeout_seconds: float = 3.0


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    enabled: bool
    dids: tuple[str, ...]
    language: str
    language_menu: LanguageMenu | None
    special_categories: SpecialCategories
    emergency_service: bool
    justification_ref: str | None
    purposes: Mapping[str, RoutePurpose]
    #: R17b: read the call reference to a caller who consented: off, withheld (only when the
    #: caller's number is withheld) or always.
    call_reference: CallReference = "off"
    #: keep the caller's display name (CALLERID(name)) in the evidence; off: never stored
    store_caller_name: bool = False


@dataclass(frozen=True, slots=True)
class AgiConfig:
    """The FastAGI server ``callconsent serve`` runs for the ``callconsent-agi`` hook."""

    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = 4573
    #: client addresses (networks) allowed to connect; every other one is refused and logged
    allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")


@dataclass(frozen=True, slots=True)
class EncryptionConfig:
    """Recordings encrypted at rest (R33): the key-encryption keys, by id (hex in a Secret)."""

    key_id: str  # the current key: wraps every new recording's data key
    keys: Mapping[str, Secret]  # key id -> 64 hex chars; the current one and previous ones

    def key_bytes(self) -> dict[str, bytes]:
        return {kid: bytes.fromhex(secret.reveal()) for kid, secret in self.keys.items()}


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    sha256: str
    organisation: Organisation
    asterisk: AsteriskConfig
    storage: StorageConfig
    prompts_dir: Path
    agent_consent: AgentConsentConfig
    notices: Mapping[str, Notice]
    routes: Mapping[str, Route]
    warnings: tuple[str, ...] = ()
    parties: PartiesConfig | None = None  # None: transfers and new parties are not watched
    #: espeak-ng's speaking rate for generated prompts (words per minute; studio audio: unused)
    tts_words_per_minute: int = 165
    agi: AgiConfig = field(default_factory=AgiConfig)  # the FastAGI hook's server
    encryption: EncryptionConfig | None = None  # None: recordings are stored in clear
    metrics: MetricsConfig = field(default_factory=lambda: MetricsConfig())


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``serve``'s HTTP endpoints: ``/metrics`` (Prometheus text) and ``/health``. Loopback by
    default: the counters tell how many calls were recorded; put a proxy in front to share."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9467
