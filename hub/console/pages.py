"""Rendering of console pages: the template environment, the language, the page headers.

Shared by the account pages (:mod:`hub.console.routes`) and the operations pages
(:mod:`hub.console.ops`). Every page is sent with :data:`CONSOLE_CSP` (no script, only the
console's own stylesheet; docs/security.md §10) and ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import cache
from typing import Any, TypedDict
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment
from starlette.concurrency import run_in_threadpool

from hub.accounts.sessions import ActiveSession
from hub.api.errors import http_status_for
from hub.console.i18n import MESSAGES, Lang, choose_language
from hub.console.policy import CSRF_FIELD
from hub.pages import environment, render
from schemas.errors import HubError
from schemas.timefmt import VN_TZ

#: The console's pages may load only their own stylesheet and post only to themselves.
CONSOLE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {"Content-Security-Policy": CONSOLE_CSP, "Cache-Control": "no-store"}
#: Seconds between refreshes of a running job's page (a batch signing, a bulk DLQ action).
REFRESH_SECONDS = 2


def _vn_time(value: datetime) -> str:
    """A stored (UTC) time as the officers read it: Vietnam time (schemas.timefmt.VN_TZ)."""
    return value.astimezone(VN_TZ).strftime("%Y-%m-%d %H:%M")


def local_time(value: datetime | None) -> str:
    """:func:`_vn_time`, or a dash for a time not set; the templates' ``local()``."""
    return _vn_time(value) if value else "—"


@cache
def templates() -> Environment:
    env = environment("hub.console", vn_time=_vn_time)
    env.globals["local"] = local_time
    return env


def lang_of(request: Request) -> Lang:
    return choose_language(request.query_params.get("lang"), request.headers.get("accept-language"))


def keep_lang(request: Request, target: str) -> str:
    """``target`` with the language the page was asked in (``?lang=``), kept across a redirect."""
    chosen = request.query_params.get("lang")
    if chosen not in ("vi", "en"):
        return target
    return f"{target}{'&' if '?' in target else '?'}lang={chosen}"


def safe_next(target: str | None) -> str:
    """Only console paths of this site (no open redirect, OWASP Unvalidated Redirects)."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/"


def _language_link(request: Request, other: Lang) -> str:
    """This page in the ``other`` language: a GET page with its query (``next`` kept); the answer
    to a form links to the home page, since the form's URL takes only POST."""
    if request.method != "GET":
        return f"/console/?lang={other}"
    return f"{request.url.path}?{urlencode({**request.query_params, 'lang': other})}"


def error_text(request: Request, exc: HubError) -> str:
    """The error's message in the page's language."""
    return exc.message_vi if lang_of(request) == "vi" else exc.message


def lang_in(target: str) -> Lang | None:
    """The language a console path asks for with ``?lang=`` (``None``: none)."""
    chosen = parse_qs(urlsplit(target).query).get("lang", [""])[-1]
    return "en" if chosen == "en" else "vi" if chosen == "vi" else None


class Outcome(TypedDict, total=False):
    """What a page shown again after a form tells (:func:`after_change`): its status, and the
    refusal's message (``error``) or the ``notice``."""

    status: int
    error: str | None
    notice: str | None


def page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    active: ActiveSession | None = None,
    lang: Lang | None = None,
    error: str | None = None,
    notice: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered for ``lang`` (default: ``request``'s language), with the console's
    headers; any page may show a refusal's message (``error``) or a ``notice``."""
    lang = lang or lang_of(request)
    catalog = MESSAGES[lang]
    suffix = "?lang=en" if lang == "en" else ""
    other: Lang = "vi" if lang == "en" else "en"
    html = render(
        templates(),
        template,
        t=catalog.__getitem__,
        lang=lang,
        suffix=suffix,
        other_lang=other,
        language_link=_language_link(request, other),
        session=active,
        csrf_field=CSRF_FIELD,
        error=error,
        notice=notice,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def problem_page(
    request: Request,
    active: ActiveSession | None,
    exc: HubError,
    *,
    back: str | None = None,
    back_label: str = "home.title",
) -> HTMLResponse:
    """A refused request as a page: the error's status and its message in the page's language
    (never a 500), with a link back to ``back`` (labelled by the catalogue key ``back_label``;
    without ``back``, the link to the dead-letter queue)."""
    return error_page(request, "problem.html", exc, active=active, back=back, back_label=back_label)


def error_page(
    request: Request, template: str, exc: HubError, *, active: ActiveSession | None, **context: Any
) -> HTMLResponse:
    """``template`` answering a refusal: the error's status, its message (``error``) in the
    page's language."""
    return page(
        request,
        template,
        status=http_status_for(exc),
        active=active,
        error=error_text(request, exc),
        **context,
    )


async def after_change(
    request: Request, change: Callable[[], object], show: Callable[..., Awaitable[HTMLResponse]], **done: Any
) -> HTMLResponse:
    """Run ``change`` (blocking, in a worker thread), then ``show`` the page again: with the
    refusal's status and message in the page's language, else with ``done`` (e.g. its notice)."""
    try:
        await run_in_threadpool(change)
    except HubError as exc:
        return await show(status=http_status_for(exc), error=error_text(request, exc))
    return await show(**done)


def job_page(
    request: Request, active: ActiveSession, template: str, job: object, running: bool
) -> HTMLResponse:
    """A job's progress page, refreshed every :data:`REFRESH_SECONDS` while it runs (the
    console has no script: ``<meta http-equiv=refresh>``)."""
    refresh = REFRESH_SECONDS if running else None
    return page(request, template, active=active, job=job, running=running, refresh=refresh)
