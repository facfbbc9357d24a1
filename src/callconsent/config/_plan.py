"""From config to a call: which route a call takes, and the plan the consent machine runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from callconsent import confirmation, names
from callconsent.consent import (
    CallPlan,
    ConsentQuestion,
    LanguageMenu,
    Objection,
    Prompt,
    PurposePlan,
)

from ._audio import audio_version, media_uri
from ._model import FALLBACK_LANGUAGE, Config, Notice, PromptText, Route, RoutePurpose


def route_for(config: Config, route_arg: str | None, dialled: str | None) -> Route | None:
    """The enabled route for a call, or None (the call is out of scope: nothing is recorded).

    The hook's argument decides when given; only without one is the dialled number looked up
    in the routes' ``dids`` (a leading ``+`` is ignored on both sides). A disabled route is
    never returned (R10).
    """
    if route_arg:
        route = config.routes.get(route_arg)
    elif dialled:
        wanted = dialled.lstrip("+")
        route = next(
            (r for r in config.routes.values() if any(d.lstrip("+") == wanted for d in r.dids)),
            None,
        )
    else:
        route = None
    return route if route is not None and route.enabled else None


def _prompt(config: Config, prompt_id: str, language: str, text: PromptText) -> Prompt:
    return Prompt(
        prompt_id=prompt_id,
        media=media_uri(config.prompts_dir, language, text.audio),
        language=language,
        version=audio_version(config.prompts_dir, language, text.audio),
    )


def _order(purpose: RoutePurpose) -> int:
    return 1 if purpose.consent is not None else 0


def build_plan(
    config: Config,
    route_name: str,
    language: str | None = None,
    *,
    sampled: Callable[[float], bool],
) -> CallPlan:
    """The plan for one call on ``route_name`` (KeyError when there is no such route).

    ``language`` is the caller's choice (menu) or None for the route's language. If any notice
    of the route lacks it, the whole call falls back to Danish, so the caller hears one language
    and the evidence names it (R6). ``sampled(rate)`` decides whether a consent purpose is asked
    on this call (R23); it is not called for rates 0 and 1. Non-consent notices play first, then
    the notices of the sampled consent purposes, each purpose in config order.

    ``Prompt.version`` is the sha256 of the audio file now on disk, read at each call so the
    evidence names the file actually played; it is "" when the file is missing (R4). A disabled
    route gives an empty plan: nothing is played and nothing recorded (R10).
    """
    route = config.routes[route_name]
    if not route.enabled:
        return CallPlan(route.name, FALLBACK_LANGUAGE, (), ())
    menu = route.language_menu
    if language is None and route.language == "menu" and menu is not None:
        # one sampling decision per purpose, the same whichever language the caller picks
        decisions: list[bool] = []
        plan = _build(config, route, None, lambda rate: _remember(decisions, sampled(rate)))
        options = tuple(
            (digit, _build(config, route, lang, _replay(decisions)))
            for digit, lang in menu.options.items()
        )
        prompt = _prompt(config, f"{route.name}.language_menu", menu.prompt_language, menu.prompt)
        return replace(plan, menu=LanguageMenu(prompt, options, menu.timeout_seconds))
    return _build(config, route, language, sampled)


def _remember(decisions: list[bool], decision: bool) -> bool:
    decisions.append(decision)
    return decision


def _replay(decisions: list[bool]) -> Callable[[float], bool]:
    answers = iter(decisions)
    return lambda _rate: next(answers)


def _build(
    config: Config, route: Route, language: str | None, sampled: Callable[[float], bool]
) -> CallPlan:
    purposes = sorted(route.purposes.values(), key=_order)
    notices = [config.notices[p.notice] for p in purposes]
    lang = language or (route.language if route.language != "menu" else FALLBACK_LANGUAGE)
    if any(lang not in notice.languages for notice in notices):
        lang = FALLBACK_LANGUAGE
    plan_notices: list[Prompt] = []
    plan_purposes: list[PurposePlan] = []
    for purpose, notice in zip(purposes, notices, strict=True):
        is_sampled = purpose.consent is None or _sample(purpose.sample_rate, sampled)
        if is_sampled:
            text = notice.languages[lang]
            plan_notices.append(_prompt(config, f"{notice.name}.notice", lang, text.prompt))
        plan_purposes.append(
            PurposePlan(
                purpose=purpose.purpose,
                lawful_basis=purpose.lawful_basis,
                retention_days=purpose.retention_days,
                consent=_question(config, route, purpose, notice, lang),
                sampled=is_sampled,
                objection=_objection(purpose),
            )
        )
    return CallPlan(
        route.name,
        lang,
        tuple(plan_notices),
        tuple(plan_purposes),
        store_caller_name=route.store_caller_name,
    )


def _objection(purpose: RoutePurpose) -> Objection | None:
    settings = purpose.objection
    if settings is None or settings.digit is None:
        return None
    record_anyway = settings.action == "record_with_grounds"
    return Objection(settings.digit, record_anyway, settings.compelling_grounds_ref)


def _sample(rate: float, sampled: Callable[[float], bool]) -> bool:
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return sampled(rate)


def _question(
    config: Config, route: Route, purpose: RoutePurpose, notice: Notice, lang: str
) -> ConsentQuestion | None:
    settings = purpose.consent
    if settings is None:
        return None
    text = notice.languages[lang]
    explicit = route.special_categories == "likely"
    question = text.explicit_question if explicit else text.question
    kind = "explicit_question" if explicit else "question"
    confirms = settings.confirm and purpose.purpose == confirmation.PURPOSE
    if question is None or text.retry is None:  # load_config refuses this; keep mypy honest
        raise ValueError(f"notice {notice.name} ({lang}) has no {kind} or retry prompt")
    return ConsentQuestion(
        question=_prompt(config, f"{notice.name}.{kind}", lang, question),
        retry=_prompt(config, f"{notice.name}.retry", lang, text.retry),
        accept_digit=settings.accept_digit,
        refuse_digit=settings.refuse_digit,
        timeout_seconds=settings.timeout_seconds,
        retries=settings.retries,
        **(_confirmations(config, settings.withdraw_sequence, lang) if confirms else {}),
    )


def _confirmations(config: Config, withdraw_sequence: str, language: str) -> dict[str, Prompt]:
    """Texts 6 and 7 in the call's language (Danish when there is none in it)."""
    lang = confirmation.language_of(language)
    given = confirmation.given_prompt_name(withdraw_sequence)
    refused = names.CONSENT_REFUSED_PROMPT
    return {
        "confirm_given": _prompt(
            config,
            "confirm.given",
            lang,
            PromptText(given, confirmation.CONFIRM_TEXTS[given][lang]),
        ),
        "confirm_refused": _prompt(
            config,
            "confirm.refused",
            lang,
            PromptText(refused, confirmation.CONFIRM_TEXTS[refused][lang]),
        ),
    }
